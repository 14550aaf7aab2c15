#include "engines/pony/pony_engine.h"

#include <arpa/inet.h>
#include <sys/mman.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"
#include "engines/registry.h"
#include "engines/testing/fake_port.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

using pony::AppOp;
using pony::AppOpCode;

// What an app saw from its engine.
struct AppView {
  std::vector<AppOp> ops;                                  // every op but RECEIVED
  std::vector<std::pair<uint32_t, std::string>> messages;  // (conn, message), reassembled
  std::map<uint32_t, std::string> partial;
};

// One host: a pony engine with a NIC port and one app port.
struct Host {
  std::unique_ptr<Engine> engine;
  PonyEngine* pony = nullptr;
  FakePort* nic = nullptr;
  FakePort* app = nullptr;
  AppView view;

  // Moves this host's connections and ports to a fresh engine, as a live upgrade does: the old one
  // saves its state, gives up its ports, and the new one takes them and the state.
  void Upgrade(const std::string& address, const std::string& extra = "") {
    engines::EngineState state;
    ASSERT_TRUE(engine->SaveState(&state).ok());
    auto e = EngineRegistry::Global().Create("pony", "pony", "address: '" + address + "' " + extra);
    ASSERT_TRUE(e.ok());
    std::vector<std::string> names = engine->PortNames();
    for (const std::string& name : names) {
      std::unique_ptr<Port> p = engine->RemovePort(name);
      engines::PortAttachment at;
      if (p->kind() == PortKind::kApp) at.set_app_id(std::stoi(name.substr(3)));
      ASSERT_TRUE((*e)->AddPort(std::move(p), at).ok());
    }
    // The old engine, its ports gone, sent nothing: no resets for the peers.
    EXPECT_TRUE(nic->TakeSent().empty());
    engine = std::move(*e);
    pony = static_cast<PonyEngine*>(engine.get());
    ASSERT_TRUE(engine->RestoreState(state).ok());
  }

  // The journal's memory: what outlives a crash (a memfd in snapd; here anonymous memory the test
  // keeps across engines).
  void* journal = nullptr;
  size_t journal_bytes = 0;
  std::string address, extra;
  void UseJournal() {
    journal_bytes = engine->CheckpointBytes();
    ASSERT_GT(journal_bytes, 0u);
    journal = mmap(nullptr, journal_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(journal, MAP_FAILED);
    auto r = engine->UseCheckpoint(journal, journal_bytes, false);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  ~Host() {
    if (journal != nullptr) munmap(journal, journal_bytes);
  }
  // The engine dies between two polls (kill -9): what it held in memory is gone but the journal,
  // and its ports (the app's rings, the NIC) are found again by a fresh engine, which picks its
  // connections up from the journal. Returns the fresh engine's report.
  std::string Crash() {
    engines::EngineState ignored;
    // Only so that taking its ports away resets nothing: a dead process sends nothing.
    EXPECT_TRUE(engine->SaveState(&ignored).ok());
    std::vector<std::pair<std::unique_ptr<Port>, engines::PortAttachment>> ports;
    for (const std::string& name : engine->PortNames()) {
      std::unique_ptr<Port> p = engine->RemovePort(name);
      engines::PortAttachment at;
      if (p->kind() == PortKind::kApp) at.set_app_id(std::stoi(name.substr(3)));
      ports.emplace_back(std::move(p), at);
    }
    EXPECT_TRUE(nic->TakeSent().empty());
    auto e = EngineRegistry::Global().Create("pony", "pony", "address: '" + address + "' " + extra);
    EXPECT_TRUE(e.ok());
    engine = std::move(*e);
    pony = static_cast<PonyEngine*>(engine.get());
    auto report = engine->UseCheckpoint(journal, journal_bytes, true);
    EXPECT_TRUE(report.ok()) << report.status();
    for (auto& [p, at] : ports) EXPECT_TRUE(engine->AddPort(std::move(p), at).ok());
    return report.ok() ? *report : "";
  }

  Host(const std::string& address, uint16_t app_id, const std::string& extra = "")
      : address(address), extra(extra) {
    auto e = EngineRegistry::Global().Create("pony", "pony", "address: '" + address + "' " + extra);
    EXPECT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
    pony = static_cast<PonyEngine*>(engine.get());
    auto n = std::make_unique<FakePort>("nic0/q0", PortKind::kNic);
    n->set_mtu(1500);
    nic = n.get();
    EXPECT_TRUE(engine->AddPort(std::move(n), engines::PortAttachment()).ok());
    AddApp(app_id);
  }
  // Attaches another app (the first one becomes `app`).
  FakePort* AddApp(uint16_t app_id) {
    auto a = std::make_unique<FakePort>("app" + std::to_string(app_id), PortKind::kApp);
    FakePort* p = a.get();
    if (app == nullptr) app = p;
    engines::PortAttachment at;
    at.set_app_id(app_id);
    EXPECT_TRUE(engine->AddPort(std::move(a), at).ok());
    return p;
  }
  void Op(const AppOp& op, const std::string& bytes = "", FakePort* port = nullptr) {
    std::string f(pony::kAppOpBytes, '\0');
    pony::WriteAppOp(op, reinterpret_cast<uint8_t*>(f.data()), pony::kAppOpBytes);
    (port ? port : app)->Inject(f + bytes);
  }
  void Connect(uint32_t addr, uint16_t app_id, uint32_t token) {
    AppOp op;
    op.op = AppOpCode::kConnect;
    op.addr = ntohl(addr);
    op.app = app_id;
    op.token = token;
    Op(op);
  }
  void Send(uint32_t conn, const std::string& m, uint32_t token, uint32_t seg = 60000) {
    for (uint32_t off = 0; off < m.size(); off += seg) {
      AppOp op;
      op.op = AppOpCode::kSend;
      op.conn = conn;
      op.token = token;
      op.length = static_cast<uint32_t>(m.size());
      op.offset = off;
      Op(op, m.substr(off, seg));
    }
  }
  void Simple(AppOpCode code, uint32_t conn) {
    AppOp op;
    op.op = code;
    op.conn = conn;
    Op(op);
  }
  // Reads what the engine sent the app.
  void Collect() { Collect(app->TakeSent()); }
  void Collect(const std::vector<std::string>& frames) {
    for (const std::string& f : frames) {
      AppOp op;
      uint32_t off = 0;
      ASSERT_EQ(pony::ParseAppOp(reinterpret_cast<const uint8_t*>(f.data()),
                                 static_cast<uint32_t>(f.size()), pony::Direction::kFromEngine,
                                 1 << 26, &op, &off),
                pony::AppOpError::kNone);
      if (op.op != AppOpCode::kReceived) {
        view.ops.push_back(op);
        continue;
      }
      std::string& p = view.partial[op.conn];
      ASSERT_EQ(p.size(), op.offset);
      p += f.substr(off);
      if (p.size() == op.length) {
        view.messages.emplace_back(op.conn, std::move(p));
        view.partial.erase(op.conn);
      }
    }
  }
  const AppOp* Find(AppOpCode code) const {
    for (const AppOp& op : view.ops) {
      if (op.op == code) return &op;
    }
    return nullptr;
  }
  int Count(AppOpCode code) const {
    int n = 0;
    for (const AppOp& op : view.ops) n += op.op == code;
    return n;
  }
  uint64_t Counter(absl::string_view name) const {
    uint64_t v = 0;
    engine->ForEachKindCounter([&](absl::string_view n, uint64_t value) {
      if (n == name) v = value;
    });
    return v;
  }
};

uint32_t Ip(const char* text) { return inet_addr(text); }

// Two hosts on one wire. `drop` decides, per frame, whether the wire loses it.
struct Wire {
  explicit Wire(const std::string& extra = "")
      : a("10.0.0.1/24", 1, extra), b("10.0.0.2/24", 2, extra) {}
  Host a;
  Host b;
  std::function<bool(const std::string&)> drop = [](const std::string&) { return false; };
  std::function<void(std::string&)> edit = [](std::string&) {};
  std::mt19937 rng{7};
  bool reorder = false;

  void Carry(Host& from, Host& to) {
    std::vector<std::string> frames = from.nic->TakeSent();
    if (reorder && frames.size() > 1) std::shuffle(frames.begin(), frames.end(), rng);
    for (std::string& f : frames) {
      edit(f);
      if (!drop(f)) to.nic->Inject(std::move(f));
    }
  }
  void Step() {
    a.engine->Poll();
    b.engine->Poll();
    Carry(a, b);
    Carry(b, a);
    a.Collect();
    b.Collect();
  }
  // Steps until `done` or `seconds` of real time pass (timers run on the real clock).
  bool Run(const std::function<bool()>& done, double seconds = 20) {
    const int64_t end = MonotonicNs() + static_cast<int64_t>(seconds * 1e9);
    while (MonotonicNs() < end) {
      Step();
      if (done()) return true;
    }
    return false;
  }
  // Opens a connection from a's app to b's; returns (a's conn, b's conn).
  std::pair<uint32_t, uint32_t> Open() {
    a.Connect(Ip("10.0.0.2"), 2, 77);
    EXPECT_TRUE(Run([&] {
      return a.Find(AppOpCode::kConnected) != nullptr && b.Find(AppOpCode::kIncoming) != nullptr;
    }));
    const AppOp* c = a.Find(AppOpCode::kConnected);
    const AppOp* i = b.Find(AppOpCode::kIncoming);
    if (c == nullptr || i == nullptr) return {0, 0};
    EXPECT_EQ(c->token, 77u);
    EXPECT_EQ(i->addr, ntohl(Ip("10.0.0.1")));
    EXPECT_EQ(i->app, 1);
    return {c->conn, i->conn};
  }
};

std::string Dump(Wire& w) {
  std::string out;
  for (Host* h : {&w.a, &w.b}) {
    out += "\n";
    h->engine->ForEachKindCounter([&](absl::string_view n, uint64_t v) {
      if (v) out += std::string(n) + "=" + std::to_string(v) + " ";
    });
    for (auto& c : h->pony->Connections()) out += c.state + " ";
  }
  return out;
}

// Every message arrived once, in order, intact, both ways, and each side's app was told SENT for
// each of its messages once, in order: what a crash must not change.
void ExpectEachMessageOnce(Wire& w, const std::vector<std::string>& ab,
                           const std::vector<std::string>& ba) {
  ASSERT_TRUE(w.Run([&] {
    return w.b.view.messages.size() == ab.size() && w.a.view.messages.size() == ba.size() &&
           w.a.Count(AppOpCode::kSent) == static_cast<int>(ab.size()) &&
           w.b.Count(AppOpCode::kSent) == static_cast<int>(ba.size());
  })) << w.b.view.messages.size()
      << " " << w.a.view.messages.size() << " " << w.a.Count(AppOpCode::kSent) << " "
      << w.b.Count(AppOpCode::kSent) << Dump(w);
  for (size_t i = 0; i < ab.size(); ++i) EXPECT_TRUE(w.b.view.messages[i].second == ab[i]) << i;
  for (size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(w.a.view.messages[i].second == ba[i]) << i;
  for (Host* h : {&w.a, &w.b}) {
    std::vector<uint32_t> tokens;
    for (const AppOp& op : h->view.ops) {
      if (op.op == AppOpCode::kSent) tokens.push_back(op.token);
    }
    for (uint32_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], i) << "SENT in order, once";
  }
}

std::string RandomMessage(std::mt19937& rng, uint32_t max) {
  std::uniform_int_distribution<uint32_t> len(1, max);
  std::string m(len(rng), '\0');
  for (char& ch : m) ch = static_cast<char>(rng());
  return m;
}

TEST(PonyEngineTest, ConfigIsChecked) {
  auto& r = EngineRegistry::Global();
  EXPECT_FALSE(r.Create("pony", "p", "").ok());
  EXPECT_FALSE(r.Create("pony", "p", "address: '10.0.0.1'").ok());
  EXPECT_FALSE(r.Create("pony", "p", "address: '10.0.0.1/33'").ok());
  EXPECT_FALSE(r.Create("pony", "p", "address: '10.0.0.1/24' mac: '01:00:00:00:00:01'").ok());
  EXPECT_FALSE(r.Create("pony", "p",
                        "address: '10.0.0.1/24' max_message_bytes: 1000000 "
                        "connection_buffer_bytes: 1000")
                   .ok());
  EXPECT_TRUE(r.Create("pony", "p", "address: '10.0.0.1/24'").ok());
}

TEST(PonyEngineTest, AppPortsNeedDistinctIds) {
  Host h("10.0.0.1/24", 1);
  engines::PortAttachment at;
  EXPECT_FALSE(h.engine->AddPort(std::make_unique<FakePort>("x", PortKind::kApp), at).ok());
  at.set_app_id(1);
  EXPECT_FALSE(h.engine->AddPort(std::make_unique<FakePort>("y", PortKind::kApp), at).ok());
  at.set_app_id(70000);
  EXPECT_FALSE(h.engine->AddPort(std::make_unique<FakePort>("z", PortKind::kApp), at).ok());
}

TEST(PonyEngineTest, MessagesBothWaysThenClose) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  std::mt19937 rng(1);
  std::vector<std::string> ab, ba;
  for (int i = 0; i < 40; ++i) {
    ab.push_back(RandomMessage(rng, i % 10 == 0 ? 300000 : 3000));
    ba.push_back(RandomMessage(rng, 2000));
    w.a.Send(ca, ab.back(), 1000 + i);
    w.b.Send(cb, ba.back(), 2000 + i);
  }
  ASSERT_TRUE(w.Run([&] {
    return w.b.view.messages.size() == ab.size() && w.a.view.messages.size() == ba.size() &&
           w.a.Count(AppOpCode::kSent) == 40 && w.b.Count(AppOpCode::kSent) == 40;
  })) << w.a.view.messages.size()
      << " " << w.b.view.messages.size();
  for (size_t i = 0; i < ab.size(); ++i) {
    EXPECT_EQ(w.b.view.messages[i].first, cb);
    EXPECT_TRUE(w.b.view.messages[i].second == ab[i]) << i;
    EXPECT_TRUE(w.a.view.messages[i].second == ba[i]) << i;
  }
  // SENT comes back in order, with the tokens.
  int k = 0;
  for (const AppOp& op : w.a.view.ops) {
    if (op.op == AppOpCode::kSent) EXPECT_EQ(op.token, 1000u + k++);
  }
  w.a.Simple(AppOpCode::kClose, ca);
  ASSERT_TRUE(w.Run([&] {
    return w.a.Find(AppOpCode::kClosed) != nullptr && w.b.Find(AppOpCode::kClosed) != nullptr;
  }));
  EXPECT_EQ(w.a.Find(AppOpCode::kClosed)->code, 0);
  EXPECT_EQ(w.b.Find(AppOpCode::kClosed)->code, 0);
  EXPECT_TRUE(w.a.pony->Connections().empty());
  EXPECT_TRUE(w.b.pony->Connections().empty());
  EXPECT_EQ(w.a.Counter("connections_opened"), 1u);
  EXPECT_EQ(w.b.Counter("connections_accepted"), 1u);
}

TEST(PonyEngineTest, LossDuplicationAndReorderDeliverEveryMessageOnceInOrder) {
  for (int loss_pct : {1, 5}) {
    Wire w;
    std::uniform_int_distribution<int> pct(0, 99);
    std::mt19937 wire_rng(loss_pct);
    w.reorder = true;
    w.drop = [&](const std::string& f) { return pct(wire_rng) < loss_pct; };
    auto [ca, cb] = w.Open();
    ASSERT_NE(ca, 0u);
    std::mt19937 rng(loss_pct);
    std::vector<std::string> ab;
    for (int i = 0; i < 150; ++i) {
      ab.push_back(RandomMessage(rng, i % 15 == 0 ? 100000 : 5000));
      w.a.Send(ca, ab.back(), i);
    }
    ASSERT_TRUE(w.Run([&] { return w.a.Count(AppOpCode::kSent) == 150; }, 60))
        << loss_pct << "% loss: " << w.b.view.messages.size() << " delivered";
    ASSERT_EQ(w.b.view.messages.size(), ab.size());
    for (size_t i = 0; i < ab.size(); ++i) EXPECT_TRUE(w.b.view.messages[i].second == ab[i]) << i;
    EXPECT_GT(w.a.Counter("retransmits"), 0u);
  }
}

TEST(PonyEngineTest, UpgradesCarryTheConnections) {
  Wire w;
  std::uniform_int_distribution<int> pct(0, 99);
  std::mt19937 wire_rng(9);
  w.reorder = true;
  w.drop = [&](const std::string&) { return pct(wire_rng) < 2; };
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  std::mt19937 rng(9);
  std::vector<std::string> ab, ba;
  for (int i = 0; i < 60; ++i) {
    ab.push_back(RandomMessage(rng, i % 6 == 0 ? 200000 : 3000));
    ba.push_back(RandomMessage(rng, 3000));
    w.a.Send(ca, ab.back(), i);
    w.b.Send(cb, ba.back(), i);
  }
  // 20 upgrades, 10 on each host, while the messages are on their way (some not yet sent, some
  // in flight, some partly reassembled).
  for (int u = 0; u < 20; ++u) {
    for (int k = 0; k < 3; ++k) w.Step();
    if (u % 2 == 0) {
      w.a.Upgrade("10.0.0.1/24");
    } else {
      w.b.Upgrade("10.0.0.2/24");
    }
  }
  ASSERT_TRUE(w.Run([&] {
    return w.b.view.messages.size() == ab.size() && w.a.view.messages.size() == ba.size() &&
           w.a.Count(AppOpCode::kSent) == 60 && w.b.Count(AppOpCode::kSent) == 60;
  })) << w.b.view.messages.size()
      << " " << w.a.view.messages.size();
  for (size_t i = 0; i < ab.size(); ++i) {
    EXPECT_TRUE(w.b.view.messages[i].second == ab[i]) << i;
    EXPECT_TRUE(w.a.view.messages[i].second == ba[i]) << i;
  }
  EXPECT_EQ(w.a.Count(AppOpCode::kClosed), 0);
  EXPECT_EQ(w.b.Count(AppOpCode::kClosed), 0);
  // Counters carried on: a's sent every message of its own in one connection.
  EXPECT_EQ(w.a.Counter("messages_sent"), 60u);
  EXPECT_EQ(w.a.Counter("connections_opened"), 1u);
  ASSERT_EQ(w.a.pony->Connections().size(), 1u);
  EXPECT_EQ(w.a.pony->Connections()[0].tx_messages, 60u);
}

// kill -9 of one host's engine under traffic both ways, messages of up to 100 kB (several packets
// and several app frames each), while b's app reads slowly: the restarted engine picks the
// connection up from its journal, the peer answers its RESYNC, and every message arrives once, in
// order, intact; each SENT comes once; no one is reset or told of a close.
TEST(PonyEngineTest, ACrashedEngineTakesItsConnectionsBackFromItsJournal) {
  for (int crashing = 0; crashing < 3; ++crashing) {
    SCOPED_TRACE(crashing == 0 ? "a crashes" : crashing == 1 ? "b crashes" : "both crash");
    Wire w;
    w.a.UseJournal();
    w.b.UseJournal();
    auto [ca, cb] = w.Open();
    ASSERT_NE(ca, 0u);
    std::mt19937 rng(11 + crashing);
    std::vector<std::string> ab, ba;
    for (int i = 0; i < 40; ++i) {
      // 40 of at most 100 kB: all of them fit the connection's budget (4 MiB) unacknowledged.
      ab.push_back(RandomMessage(rng, 100000));
      ba.push_back(RandomMessage(rng, 100000));
    }
    size_t next = 0;
    auto send_more = [&](size_t upto) {
      for (; next < upto; ++next) {
        w.a.Send(ca, ab[next], static_cast<uint32_t>(next), 50000);
        w.b.Send(cb, ba[next], static_cast<uint32_t>(next), 50000);
      }
    };
    w.b.app->set_tx_room(3);  // b's app takes three frames a poll: messages wait for it
    send_more(10);
    for (int crash = 0; crash < 3; ++crash) {
      // Run a little: some messages across, some in flight, some held for b's app.
      int steps = 0;
      w.Run([&] { return ++steps == 40 + 30 * crash; });
      send_more(next + 10);
      // Messages both ways are not yet where they go: some in flight, some held for b's app.
      ASSERT_LT(w.b.view.messages.size(), next);
      ASSERT_LT(w.a.Count(AppOpCode::kSent), static_cast<int>(next));
      for (Host* h : {&w.a, &w.b}) {
        if ((crashing == 0 && h == &w.b) || (crashing == 1 && h == &w.a)) continue;
        const std::string report = h->Crash();
        EXPECT_NE(report.find("picked up 1 connection"), std::string::npos) << report;
      }
    }
    w.b.app->set_tx_room(1 << 20);
    ExpectEachMessageOnce(w, ab, ba);
    for (Host* h : {&w.a, &w.b}) {
      EXPECT_EQ(h->Count(AppOpCode::kClosed), 0);
      EXPECT_EQ(h->Counter("resets_sent"), 0u);
      EXPECT_EQ(h->Counter("drop_protocol_error"), 0u);
    }
    Host& crashed = crashing == 0 ? w.a : w.b;
    Host& peer = crashing == 0 ? w.b : w.a;
    EXPECT_EQ(crashed.Counter("resyncs"), 1u) << "counted since its last crash";
    // Both restarted: each takes the other's RESYNC as its answer.
    EXPECT_EQ(peer.Counter(crashing == 2 ? "resyncs" : "resyncs_answered"),
              crashing == 2 ? 1u : 3u);
    EXPECT_EQ(crashed.Count(AppOpCode::kConnected) + crashed.Count(AppOpCode::kIncoming), 1)
        << "the app was told of its connection once";
  }
}

// The engine dies after it handled a burst of its app's SEND frames, into its journal, and before
// it released them: the restarted engine is served the burst again and takes from it only what
// the journal does not have (app_frames_replayed); every message arrives once.
TEST(PonyEngineTest, ABurstServedAgainAfterACrashIsTakenOnce) {
  // Small, so that the journal can be copied at the instant of the crash.
  const std::string small =
      "max_connections: 4 connection_buffer_bytes: 2000000 max_message_bytes: 100000";
  Wire w(small);
  w.a.UseJournal();
  w.b.UseJournal();
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  std::mt19937 rng(5);
  std::vector<std::string> ab;
  for (int i = 0; i < 16; ++i) ab.push_back(RandomMessage(rng, 100000));
  // In frames of 7 kB: a burst of 32 frames ends inside a message.
  for (size_t i = 0; i < 8; ++i) w.a.Send(ca, ab[i], static_cast<uint32_t>(i), 7000);
  w.Run([] { return false; }, 0.02);
  for (size_t i = 8; i < ab.size(); ++i) w.a.Send(ca, ab[i], static_cast<uint32_t>(i), 7000);
  // The next burst of a's app: the journal as it is when the burst is handled, not yet released.
  std::vector<char> at_death;
  w.a.app->set_on_release([&] {
    if (at_death.empty()) {
      at_death.assign(static_cast<char*>(w.a.journal),
                      static_cast<char*>(w.a.journal) + w.a.journal_bytes);
    }
  });
  for (int i = 0; i < 100 && at_death.empty(); ++i) w.a.engine->Poll();
  ASSERT_FALSE(at_death.empty());
  w.a.app->set_on_release(nullptr);
  // What that poll did after the release never happened: the process was dead.
  w.a.nic->TakeSent();
  w.a.app->TakeSent();
  memcpy(w.a.journal, at_death.data(), at_death.size());
  w.a.app->UndoRelease();
  const std::string report = w.a.Crash();
  EXPECT_NE(report.find("picked up 1 connection"), std::string::npos) << report;
  ExpectEachMessageOnce(w, ab, {});
  EXPECT_GT(w.a.Counter("app_frames_replayed"), 0u);
  EXPECT_EQ(w.a.Counter("resets_sent") + w.b.Counter("resets_sent"), 0u);
}

// The engine dies just after a burst to its app went (RECEIVED segments, SENTs), before it noted
// that: the journal said beforehand what the burst would hand over, and the app's ring says it
// went (app_bursts_went). Nothing reaches the app twice; nothing is missing.
TEST(PonyEngineTest, ABurstToTheAppJustBeforeACrashIsNotHandedAgain) {
  const std::string small =
      "max_connections: 4 connection_buffer_bytes: 2000000 max_message_bytes: 100000";
  for (int trial = 0; trial < 4; ++trial) {
    SCOPED_TRACE(trial);
    Wire w(small);
    w.a.UseJournal();
    w.b.UseJournal();
    auto [ca, cb] = w.Open();
    ASSERT_NE(ca, 0u);
    std::mt19937 rng(21 + trial);
    std::vector<std::string> ab, ba;
    for (int i = 0; i < 10; ++i) {
      ab.push_back(RandomMessage(rng, 100000));
      ba.push_back(RandomMessage(rng, 2000));
    }
    w.b.app->set_tx_room(3);  // three frames a poll: messages reach b's app in pieces
    for (size_t i = 0; i < ab.size(); ++i) {
      w.a.Send(ca, ab[i], static_cast<uint32_t>(i));
      w.b.Send(cb, ba[i], static_cast<uint32_t>(i));
    }
    int steps = 0;
    w.Run([&] { return ++steps == 20 + 15 * trial; });
    // b's next burst to its app: the journal as it is the instant after it went.
    std::vector<char> at_death;
    std::vector<std::string> went;
    w.b.app->set_after_transmit([&] {
      if (!at_death.empty()) return;
      went = w.b.app->TakeSent();
      if (went.empty()) return;
      at_death.assign(static_cast<char*>(w.b.journal),
                      static_cast<char*>(w.b.journal) + w.b.journal_bytes);
    });
    for (int i = 0; i < 1000 && at_death.empty(); ++i) {
      w.b.app->set_tx_room(3);
      w.b.engine->Poll();
    }
    ASSERT_FALSE(at_death.empty());
    w.b.app->set_after_transmit(nullptr);
    w.b.nic->TakeSent();  // after its death: never sent
    w.b.app->TakeSent();
    w.b.Collect(went);  // the burst reached the app
    memcpy(w.b.journal, at_death.data(), at_death.size());
    const std::string report = w.b.Crash();
    EXPECT_NE(report.find("picked up 1 connection"), std::string::npos) << report;
    EXPECT_GT(w.b.Counter("app_bursts_went"), 0u);
    w.b.app->set_tx_room(1 << 20);
    ExpectEachMessageOnce(w, ab, ba);
  }
}

TEST(PonyEngineTest, APacketLostThreeTimesIsRecoveredBehind3000Messages) {
  // The first message's packet is lost three times (a fast retransmit, then timeouts) while 3000
  // small messages follow it.
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  int dropped = 0;
  w.drop = [&](const std::string& f) {
    const bool first = f.size() > 42 + 44 && f[43] == 3 && f[42 + 40] == 0 && f[42 + 41] == 0 &&
                       f[42 + 42] == 0 && f[42 + 43] == 1;  // DATA of msg_id 1
    return first && dropped++ < 3;
  };
  for (int i = 0; i < 3000; ++i) w.a.Send(ca, "m" + std::to_string(i), i);
  ASSERT_TRUE(w.Run([&] { return w.b.view.messages.size() == 3000; }, 30))
      << w.b.view.messages.size() << " delivered";
  EXPECT_EQ(dropped, 4);  // three copies lost, the fourth went
  EXPECT_EQ(w.b.Find(AppOpCode::kClosed), nullptr);
  for (int i = 0; i < 3000; ++i) EXPECT_EQ(w.b.view.messages[i].second, "m" + std::to_string(i));
}

TEST(PonyEngineTest, TheEngineHoldsNoMoreThanItsBoundForAllConnections) {
  // 300 kB for the engine, 4 MiB for each connection: b's app does not read, so the second 200 kB
  // message waits at the sender (dropped, counted, sent again) until the first is taken.
  Wire w("max_buffered_bytes: 300000");
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);
  std::mt19937 rng(5);
  const std::string m1 = RandomMessage(rng, 1000) + std::string(200000, 'a');
  const std::string m2 = RandomMessage(rng, 1000) + std::string(200000, 'b');
  w.a.Send(ca, m1, 1);
  w.a.Send(ca, m2, 2);
  w.Run([] { return false; }, 0.3);
  EXPECT_GT(w.b.Counter("drop_memory_full"), 0u);
  EXPECT_LE(w.a.Count(AppOpCode::kSent), 1);
  w.b.app->set_tx_room(1 << 20);
  ASSERT_TRUE(w.Run([&] { return w.b.view.messages.size() == 2; }));
  EXPECT_TRUE(w.b.view.messages[0].second == m1);
  EXPECT_TRUE(w.b.view.messages[1].second == m2);
}

TEST(PonyEngineTest, APeerHostOpensNoMoreThanItsShare) {
  Wire w("max_connections_per_peer: 2");
  for (uint32_t t = 1; t <= 3; ++t) w.a.Connect(Ip("10.0.0.2"), 2, t);
  ASSERT_TRUE(w.Run([&] {
    return w.a.Count(AppOpCode::kConnected) == 2 && w.a.Count(AppOpCode::kRefused) == 1;
  }));
  EXPECT_EQ(w.a.Find(AppOpCode::kRefused)->code,
            static_cast<uint16_t>(pony::ResetReason::kRefused));
}

TEST(PonyEngineTest, ASlowReaderSlowsItsSenderWithoutADrop) {
  // Small buffers: the app may have 400 kB unacknowledged, the receiver holds as much.
  Wire w("max_message_bytes: 100000 connection_buffer_bytes: 400000");
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);  // b's app stops reading
  std::mt19937 rng(3);
  std::vector<std::string> ab;
  size_t queued = 0;
  uint64_t outstanding = 0;
  // a's app sends as its budget allows: a message waits until SENT frees room for it.
  auto send_more = [&] {
    uint64_t done = 0;
    for (int k = 0, sent = w.a.Count(AppOpCode::kSent); k < sent; ++k) done += ab[k].size();
    while (queued < 60) {
      if (queued == ab.size()) ab.push_back(RandomMessage(rng, 100000));
      if (outstanding - done + ab[queued].size() > 400000) break;
      w.a.Send(ca, ab[queued], static_cast<uint32_t>(queued));
      outstanding += ab[queued].size();
      ++queued;
    }
    return false;
  };
  // Some go, then the credit runs out: a's messages wait, nothing is dropped.
  w.Run(send_more, 0.5);
  const int sent_while_stopped = w.a.Count(AppOpCode::kSent);
  EXPECT_LT(sent_while_stopped, 20);
  EXPECT_EQ(w.b.view.messages.size(), 0u);
  w.Run(send_more, 0.2);
  EXPECT_EQ(w.a.Count(AppOpCode::kSent), sent_while_stopped);  // it stays stopped
  w.b.app->set_tx_room(1 << 20);
  ASSERT_TRUE(w.Run([&] {
    send_more();
    return w.b.view.messages.size() == 60;
  })) << w.b.view.messages.size()
      << " delivered, " << w.a.Count(AppOpCode::kSent) << " sent" << Dump(w);
  for (size_t i = 0; i < ab.size(); ++i) EXPECT_TRUE(w.b.view.messages[i].second == ab[i]) << i;
  EXPECT_EQ(w.b.Counter("drop_over_credit"), 0u);
  EXPECT_EQ(w.a.Counter("op_drop_over_budget"), 0u);
}

// What the peer is told it delivered is what its app was handed: SENT means the peer's app has
// the message, and what the peer holds for an app that does not read is SACKed (so not sent
// again) until it does.
TEST(PonyEngineTest, SentMeansThePeerAppWasHandedIt) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);
  for (uint32_t i = 0; i < 3; ++i) w.a.Send(ca, std::string(3000, static_cast<char>('x' + i)), i);
  w.Run([] { return false; }, 0.3);
  EXPECT_EQ(w.a.Count(AppOpCode::kSent), 0) << Dump(w);
  EXPECT_EQ(w.a.Counter("retransmits"), 0u) << "held data is SACKed, not lost";
  w.b.app->set_tx_room(1 << 20);
  ASSERT_TRUE(w.Run([&] { return w.a.Count(AppOpCode::kSent) == 3; })) << Dump(w);
  ASSERT_EQ(w.b.view.messages.size(), 3u);
  EXPECT_EQ(w.b.view.messages[2].second, std::string(3000, 'z'));
}

// The ACK that says the peer's app read what it held may be lost: the sender, everything SACKed
// and nothing moving, asks again (an ACK_NOW probe every retransmission timeout).
TEST(PonyEngineTest, ALostAcknowledgementOfWhatTheAppReadIsAskedForAgain) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);
  w.a.Send(ca, std::string(5000, 'q'), 1);
  w.Run([] { return false; }, 0.1);
  ASSERT_EQ(w.a.Count(AppOpCode::kSent), 0);
  // b's app reads; b's ACKs are lost for a while.
  bool lose = true;
  w.drop = [&](const std::string& f) {
    return lose && f.size() > 43 && f[43] == static_cast<char>(pony::PacketType::kAck) &&
           f[6 + 5] == 0x02;  // from b (MAC 02:50:0a:00:00:02)
  };
  w.b.app->set_tx_room(1 << 20);
  w.Run([&] { return w.b.view.messages.size() == 1; }, 1);
  ASSERT_EQ(w.b.view.messages.size(), 1u);
  w.Run([] { return false; }, 0.05);
  lose = false;
  ASSERT_TRUE(w.Run([&] { return w.a.Count(AppOpCode::kSent) == 1; }, 5)) << Dump(w);
}

// An engine that predates kCapResync (its SYN's and SYN_ACK's hold_ns are 0) gets the
// acknowledgements it knows: of what was received.
TEST(PonyEngineTest, APeerWithoutResyncIsAcknowledgedWhatWasReceived) {
  Wire w;
  w.edit = [](std::string& f) {
    const size_t p = 14 + 20 + 8;  // the pony header
    if (f.size() < p + 40 || (f[p + 1] != static_cast<char>(pony::PacketType::kSynAck) &&
                              f[p + 1] != static_cast<char>(pony::PacketType::kSyn))) {
      return;
    }
    // hold_ns 1 -> 0, ts + 1 in the same 16-bit column: the UDP checksum still holds.
    auto* b = reinterpret_cast<uint8_t*>(f.data());
    if (b[p + 39] != 1 || b[p + 31] == 0xff) return;
    b[p + 39] = 0;
    b[p + 31] += 1;
  };
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);
  w.a.Send(ca, "held", 1);
  // Neither end heard the other say kCapResync: b acknowledges what it received.
  ASSERT_TRUE(w.Run([&] { return w.a.Count(AppOpCode::kSent) == 1; }, 2)) << Dump(w);
  EXPECT_EQ(w.b.view.messages.size(), 0u);
  w.b.app->set_tx_room(1 << 20);
  ASSERT_TRUE(w.Run([&] { return w.b.view.messages.size() == 1; }));
}

TEST(PonyEngineTest, NoSuchAppIsRefused) {
  Wire w;
  w.a.Connect(Ip("10.0.0.2"), 9, 5);
  ASSERT_TRUE(w.Run([&] { return w.a.Find(AppOpCode::kRefused) != nullptr; }));
  EXPECT_EQ(w.a.Find(AppOpCode::kRefused)->token, 5u);
  EXPECT_EQ(w.a.Find(AppOpCode::kRefused)->code,
            static_cast<uint16_t>(pony::ResetReason::kNoSuchApp));
}

TEST(PonyEngineTest, AnAddressNoOneAnswersIsUnreachable) {
  Wire w;
  w.a.Connect(Ip("10.0.0.9"), 2, 6);
  w.a.Connect(Ip("10.0.1.9"), 2, 7);  // not on the link
  ASSERT_TRUE(w.Run([&] { return w.a.Count(AppOpCode::kRefused) == 2; }, 5));
  for (const AppOp& op : w.a.view.ops) {
    EXPECT_EQ(op.code, static_cast<uint16_t>(PonyAppCode::kUnreachable));
  }
  EXPECT_GE(w.a.Counter("arp_requests"), 3u);
}

TEST(PonyEngineTest, AnAppThatGoesAwayResetsItsPeer) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  std::unique_ptr<Port> gone = w.a.engine->RemovePort("app1");  // kept: w.a.app points to it
  ASSERT_NE(gone, nullptr);
  ASSERT_TRUE(w.Run([&] { return w.b.Find(AppOpCode::kClosed) != nullptr; }));
  EXPECT_EQ(w.b.Find(AppOpCode::kClosed)->code, static_cast<uint16_t>(pony::ResetReason::kAppGone));
  EXPECT_TRUE(w.a.pony->Connections().empty());
}

TEST(PonyEngineTest, ASilentPeerTimesOut) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.drop = [](const std::string&) { return true; };
  w.a.Send(ca, "hello", 1);
  ASSERT_TRUE(w.Run([&] { return w.a.Find(AppOpCode::kClosed) != nullptr; }, 10));
  EXPECT_EQ(w.a.Find(AppOpCode::kClosed)->code, static_cast<uint16_t>(pony::ResetReason::kTimeout));
  EXPECT_EQ(w.a.Count(AppOpCode::kSent), 0);
  EXPECT_EQ(w.a.Counter("timeouts"), 1u);
}

// b holds what a sent for its app, which does not read: a's data is all SACKed, nothing is in
// flight, and a probes. While b answers, the connection stays however long b's app takes; once b
// stops answering (its host went away), a gives it up as it gives up a peer silent under
// retransmissions.
TEST(PonyEngineTest, APeerThatStopsAnsweringWhileHoldingDataTimesOut) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  w.b.app->set_tx_room(0);
  w.a.Send(ca, std::string(3000, 'h'), 1);
  // Longer than max_timeouts probes at the smallest timeout would take: answered, they do not
  // count.
  w.Run([] { return false; }, 0.5);
  ASSERT_EQ(w.a.Find(AppOpCode::kClosed), nullptr) << Dump(w);
  ASSERT_EQ(w.a.Count(AppOpCode::kSent), 0);
  w.drop = [](const std::string&) { return true; };
  ASSERT_TRUE(w.Run([&] { return w.a.Find(AppOpCode::kClosed) != nullptr; }, 10)) << Dump(w);
  EXPECT_EQ(w.a.Find(AppOpCode::kClosed)->code, static_cast<uint16_t>(pony::ResetReason::kTimeout));
  EXPECT_EQ(w.a.Count(AppOpCode::kSent), 0);
  EXPECT_EQ(w.a.Counter("retransmits"), 0u) << "held data is never sent again";
}

TEST(PonyEngineTest, HostileAppOperationsAreDroppedByReason) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  FakePort* other = w.b.AddApp(3);
  other->Inject("short");
  AppOp op;
  op.op = AppOpCode::kConnected;  // an op only the engine sends
  op.conn = 1;
  w.b.Op(op, "", other);
  op.op = AppOpCode::kSend;  // app 3 on app 2's connection
  op.conn = cb;
  op.length = 9;
  w.b.Op(op, "not yours", other);
  op = AppOp();
  op.op = AppOpCode::kClose;  // no such connection
  op.conn = 12345;
  w.b.Op(op, "", other);
  w.Run([] { return false; }, 0.05);
  EXPECT_EQ(w.b.Counter("op_drop_too_short"), 1u);
  EXPECT_EQ(w.b.Counter("op_drop_bad_op"), 1u);
  EXPECT_EQ(w.b.Counter("op_drop_unknown_connection"), 2u);
  EXPECT_EQ(w.b.pony->Connections().size(), 1u);
  // A segment out of place breaks the connection (the app's own), and only that.
  op = AppOp();
  op.op = AppOpCode::kSend;
  op.conn = ca;
  op.length = 100;
  op.offset = 50;
  w.a.Op(op, "x");
  ASSERT_TRUE(w.Run([&] {
    return w.a.Find(AppOpCode::kClosed) != nullptr && w.b.Find(AppOpCode::kClosed) != nullptr;
  }));
  EXPECT_EQ(w.a.Counter("op_drop_out_of_order"), 1u);
  EXPECT_EQ(w.b.Find(AppOpCode::kClosed)->code,
            static_cast<uint16_t>(pony::ResetReason::kProtocolError));
}

TEST(PonyEngineTest, HostileWireFramesAreDroppedByReason) {
  Wire w;
  auto [ca, cb] = w.Open();
  ASSERT_NE(ca, 0u);
  // A real frame from a to b, then copies of it broken in turn.
  w.a.Send(ca, "payload", 1);
  w.a.engine->Poll();
  std::vector<std::string> frames = w.a.nic->TakeSent();
  ASSERT_EQ(frames.size(), 1u);
  std::string f = frames[0];
  std::string bad_sum = f;
  bad_sum[f.size() - 1] ^= 1;  // a payload byte: the UDP checksum no longer matches
  w.b.nic->Inject(bad_sum);
  std::string bad_version = f;
  bad_version[42] = 9;  // the pony header's version byte
  w.b.nic->Inject(bad_version);
  w.b.nic->Inject(f.substr(0, 30));  // cut inside the IPv4 header
  w.b.engine->Poll();
  EXPECT_EQ(w.b.Counter("drop_bad_checksum"), 2u);  // the version byte breaks the sum too
  EXPECT_EQ(w.b.nic->stats().drop_malformed.Get(), 1u);
  w.b.nic->Inject(f);
  ASSERT_TRUE(w.Run([&] { return w.b.view.messages.size() == 1; }));
  EXPECT_EQ(w.b.view.messages[0].second, "payload");
}

}  // namespace
}  // namespace snapd
