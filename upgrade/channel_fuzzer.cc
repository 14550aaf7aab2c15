// libFuzzer target for the upgrade channel: what a hostile other snapd sends the new snapd. The
// fuzzer plays the old snapd: it writes the input's messages as packets onto a real upgrade channel
// (a SOCK_SEQPACKET socketpair) with fds it makes itself (memfds, eventfds, sockets, in the counts
// the messages name, at most kMaxFdsPerMessage each), and writes the shared memory behind them
// (ring headers and descriptors, frame bytes, the cursor journal). The receiving side then runs the
// real code in the order upgrade::NewSnapd::Steps and NewSnapd::MoveIn do:
//   ReceiveFdMessage (framing, fd packets) -> wire::Envelope -> for a Brownout: TakeMemifHandoff
//   (fd indices), JournalMemory::Map, EngineRegistry::Create for the config's engines (their text
//   configs), MemifServer::Adopt (the listener), AddInterface for the config's apps,
//   AdoptConnection (region seals and sizes, ring bounds, eventfds, cookies, resumed cursors) with
//   an AppPort attached to its engine as OnAppConnected does; for each MoveEngine: RestoreState,
//   Resync, a CursorJournal over the area named, and a few Polls of the engine over the adopted
//   rings, whose heads the input moves between polls; after Done, as an old snapd taking back
//   from a journal the new one wrote: RollForward over every area.
// Daemon's own glue is not run (it needs EAL, NICs and workers): this file plays its few lines,
// and where the daemon trusts the message (an app naming no engine, an engine in no group) it
// skips what the daemon would do. Any fd the real code leaves open after a failure is a finding.
//
// Input: byte 0 flags (kRawHeader, kSplitFds, kMoveHeads), byte 1 the number of messages
// (1 + byte % 4), then per message a little-endian u16 length and that many bytes (a serialized
// wire::Envelope); the rest is a stream that picks fd kinds and shared memory contents, read as
// zeros once it runs out (zeros: every fd of the kind its role wants, valid cookies, empty rings).
// Seeds (upgrade/fuzz_corpus/channel/) were made from text protos with protoc --encode.
#include <dirent.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "engines/engine.h"
#include "engines/frame.h"
#include "engines/registry.h"
#include "glog/logging.h"
#include "google/protobuf/stubs/logging.h"
#include "ipc/memif_protocol.h"
#include "ipc/server.h"
#include "snapd/daemon/app_port.h"
#include "upgrade/cursor_journal.h"
#include "upgrade/fd_channel.h"
#include "upgrade/memif_handoff.h"
#include "upgrade/upgrade.pb.h"

namespace {

using snapd::UniqueFd;
namespace memif = snapd::memif;
namespace wire = snapd::upgrade::wire;

constexpr uint8_t kRawHeader = 1;  // header packets come from the stream (magic, sizes, fd count)
constexpr uint8_t kSplitFds = 2;   // fds go in packets of 1-8 (else all in one)
constexpr uint8_t kMoveHeads = 4;  // the peer moves ring heads between polls
constexpr size_t kMaxMessages = 4;
constexpr size_t kMaxFdsPerMessage = 40;
constexpr uint64_t kMaxMemfdBytes = 1 << 20;  // a larger claim gets a memfd this large
constexpr size_t kMaxEngines = 4;
constexpr size_t kMaxApps = 8;
constexpr uint32_t kMagic = 0x534e4150;  // fd_channel.cc's header
struct Header {
  uint32_t magic;
  uint32_t bytes;
  uint32_t fds;
};

// The rest of the input: fixed-size reads, zeros past the end.
class Stream {
 public:
  Stream(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  void Bytes(void* out, size_t len) {
    size_t take = std::min(len, n_);
    memcpy(out, p_, take);
    memset(static_cast<uint8_t*>(out) + take, 0, len - take);
    p_ += take;
    n_ -= take;
  }
  template <typename T>
  T Get() {
    T v;
    Bytes(&v, sizeof(v));
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

enum class Role { kNone, kListener, kControl, kRegion, kEventFd, kJournal };

// Memory the old snapd (or an app) keeps mapped and may write at any time.
struct Mapping {
  uint8_t* base = nullptr;
  uint64_t size = 0;
  ~Mapping() {
    if (base != nullptr) munmap(base, size);
  }
};

// What the sender keeps: the other ends of control sockets, its mappings, the ring headers it may
// move. Lives for the whole input.
struct Sender {
  std::vector<UniqueFd> peers;
  std::vector<std::unique_ptr<Mapping>> maps;
  std::vector<memif::RingHeader*> rings;
  Mapping* journal = nullptr;
  uint32_t journal_areas = 0;
  uint32_t journal_capacity = 0;
};

UniqueFd Memfd(uint64_t size, unsigned seals, Sender* s, Mapping** map) {
  UniqueFd fd(memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  size = std::min(size, kMaxMemfdBytes);
  if (!fd || ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return UniqueFd();
  if (map != nullptr && size > 0) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p != MAP_FAILED) {
      s->maps.push_back(std::make_unique<Mapping>());
      s->maps.back()->base = static_cast<uint8_t*>(p);
      s->maps.back()->size = size;
      *map = s->maps.back().get();
    }
  }
  if (seals != 0) fcntl(fd.get(), F_ADD_SEALS, seals);
  return fd;
}

UniqueFd Listener() {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;  // autobind: an abstract name of the kernel's choosing
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(sa_family_t)) != 0 ||
      listen(fd.get(), 4) != 0) {
    return UniqueFd();
  }
  return fd;
}

UniqueFd SocketEnd(Sender* s) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return UniqueFd();
  s->peers.emplace_back(sv[1]);
  return UniqueFd(sv[0]);
}

// An fd for `role`, or (1 in 32 stream bytes) one of the wrong kind.
UniqueFd MakeFd(Role role, uint64_t size, Stream& in, Sender* s, Mapping** map) {
  const uint8_t pick = in.Get<uint8_t>();
  if (pick >= 0xf8) {
    switch (pick & 7) {
      case 0:
        return UniqueFd(eventfd(0, EFD_CLOEXEC));
      case 1:
        return Memfd(65536, 0, s, nullptr);  // unsealed
      case 2:
        return Memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW, s, nullptr);  // too small
      case 3: {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return UniqueFd();
        close(p[1]);
        return UniqueFd(p[0]);
      }
      case 4:
        return SocketEnd(s);
      case 5:
        return Listener();
      case 6:
        return UniqueFd(open("/dev/null", O_RDWR | O_CLOEXEC));
      default:
        return Memfd(65536, F_SEAL_SHRINK | F_SEAL_WRITE, s, nullptr);  // not writable
    }
  }
  switch (role) {
    case Role::kListener:
      return Listener();
    case Role::kControl:
      return SocketEnd(s);
    case Role::kRegion:
    case Role::kJournal:
      return Memfd(size, F_SEAL_SHRINK | F_SEAL_GROW, s, map);
    case Role::kEventFd:
    case Role::kNone:
      break;
  }
  return UniqueFd(eventfd(0, EFD_CLOEXEC));
}

struct Planned {
  Role role = Role::kNone;
  uint64_t size = 0;
  Mapping* map = nullptr;
};

// The fds a message names and what each should be, as the old snapd would have sent them.
std::vector<Planned> PlanFds(const wire::Envelope& e, bool parsed, Stream& in) {
  std::vector<Planned> plan;
  auto want = [&](uint32_t index, Role role, uint64_t size = 0) {
    if (index >= kMaxFdsPerMessage) return;  // named, never sent: the receiver must notice
    if (plan.size() <= index) plan.resize(index + 1);
    if (plan[index].role == Role::kNone) plan[index] = Planned{role, size, nullptr};
  };
  if (parsed && e.has_brownout()) {
    const wire::Brownout& b = e.brownout();
    want(b.memif().listener_fd(), Role::kListener);
    for (const wire::MemifConnection& c : b.memif().connections()) {
      want(c.control_fd(), Role::kControl);
      for (int i = 0; i < c.region_fds_size(); ++i) {
        want(c.region_fds(i), Role::kRegion, i < c.region_sizes_size() ? c.region_sizes(i) : 0);
      }
      for (uint32_t f : c.c2s_eventfds()) want(f, Role::kEventFd);
      for (uint32_t f : c.s2c_eventfds()) want(f, Role::kEventFd);
    }
    want(b.control_listener_fd(), Role::kListener);
    if (b.has_metrics_listener_fd()) want(b.metrics_listener_fd(), Role::kListener);
    if (b.journal_capacity() <= (1u << 20) && b.journal_areas() <= (1u << 16)) {
      uint64_t area = (64 + uint64_t{b.journal_capacity()} * 8 + 63) / 64 * 64;
      want(b.journal_fd(), Role::kJournal, std::max<uint64_t>(1, b.journal_areas()) * area);
    }
  }
  size_t extra = in.Get<uint8_t>() % 4;  // fds nobody names
  plan.resize(std::min(kMaxFdsPerMessage, plan.size() + extra));
  return plan;
}

// Writes the first areas of the cursor journal as a new snapd that died mid-batch (or lies) would
// leave them.
void WriteJournal(const Sender& s, Stream& in) {
  if (s.journal == nullptr) return;
  const uint64_t area = (64 + uint64_t{s.journal_capacity} * 8 + 63) / 64 * 64;
  for (uint32_t a = 0; a < std::min<uint32_t>(s.journal_areas, 4); ++a) {
    if ((a + 1) * area > s.journal->size) break;
    auto* j = reinterpret_cast<snapd::JournalArea*>(s.journal->base + a * area);
    j->committed = in.Get<uint8_t>();
    j->count = in.Get<uint32_t>();
    uint32_t n = std::min<uint32_t>(s.journal_capacity, in.Get<uint8_t>() % 9);
    in.Bytes(j->entries(), n * sizeof(snapd::JournalEntry));
  }
}

// Writes the ring headers, descriptors and frame bytes of each connection's regions.
void FillRegions(const wire::Brownout& b, const std::vector<Planned>& plan, Stream& in, Sender* s) {
  for (const wire::MemifConnection& c : b.memif().connections()) {
    std::vector<Mapping*> regions;
    for (uint32_t f : c.region_fds()) {
      regions.push_back(f < plan.size() && plan[f].role == Role::kRegion ? plan[f].map : nullptr);
    }
    for (const auto* rings : {&c.c2s_rings(), &c.s2c_rings()}) {
      for (const wire::RingSpec& r : *rings) {
        // As TakeMemifHandoff narrows them.
        const uint16_t region = static_cast<uint16_t>(r.region());
        const uint8_t log2 = static_cast<uint8_t>(r.log2_size());
        if (region >= regions.size() || regions[region] == nullptr || log2 == 0 || log2 > 14 ||
            uint64_t{r.offset()} + memif::RingBytes(log2) > regions[region]->size) {
          continue;
        }
        uint8_t* at = regions[region]->base + r.offset();
        const uint8_t mode = in.Get<uint8_t>();
        uint32_t cookie = (mode & 1) ? in.Get<uint32_t>() : memif::kCookie;
        uint16_t flags = in.Get<uint16_t>(), head = in.Get<uint16_t>(), tail = in.Get<uint16_t>();
        memcpy(at + offsetof(memif::RingHeader, cookie), &cookie, 4);
        memcpy(at + offsetof(memif::RingHeader, flags), &flags, 2);
        memcpy(at + offsetof(memif::RingHeader, head), &head, 2);
        memcpy(at + offsetof(memif::RingHeader, tail), &tail, 2);
        const uint32_t descs = std::min<uint32_t>(1u << log2, mode >> 3);
        in.Bytes(at + sizeof(memif::RingHeader), descs * sizeof(memif::Descriptor));
        if (r.offset() % 64 == 0) s->rings.push_back(reinterpret_cast<memif::RingHeader*>(at));
      }
    }
    for (Mapping* m : regions) {  // frame bytes somewhere in the region
      if (m == nullptr) continue;
      uint64_t off = in.Get<uint32_t>() % m->size;
      in.Bytes(m->base + off, std::min<uint64_t>(in.Get<uint8_t>(), m->size - off));
    }
  }
  const uint32_t f = b.journal_fd();
  if (f < plan.size() && plan[f].role == Role::kJournal && plan[f].map != nullptr) {
    s->journal = plan[f].map;
    s->journal_areas = b.journal_areas();
    s->journal_capacity = b.journal_capacity();
    WriteJournal(*s, in);
  }
}

// Sends one message as fd_channel does (or not quite, with kRawHeader), without ever blocking.
void SendMessage(int sock, const std::string& bytes, const std::vector<UniqueFd>& fds,
                 uint8_t flags, Stream& in) {
  Header h{kMagic, static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(fds.size())};
  if (flags & kRawHeader) h = in.Get<Header>();
  std::string packet(reinterpret_cast<const char*>(&h), sizeof(h));
  packet += bytes;
  if (send(sock, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) return;
  for (size_t i = 0; i < fds.size();) {
    size_t n = fds.size() - i;
    if (flags & kSplitFds) n = std::min<size_t>(n, 1 + in.Get<uint8_t>() % 8);
    std::vector<int> raw;
    for (size_t k = i; k < i + n; ++k) {  // an fd we failed to make: /dev/null stands in
      raw.push_back(fds[k] ? fds[k].get() : open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    char one = 'f';
    iovec iov{&one, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * n));
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), raw.data(), sizeof(int) * n);
    ssize_t sent = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    for (size_t k = 0; k < n; ++k) {
      if (!fds[i + k]) close(raw[k]);
    }
    if (sent < 0) return;
    i += n;
  }
}

// The new snapd's side: what NewSnapd::Steps and MoveIn do with what arrives, minus EAL and NICs.
class NewSnapd {
 public:
  ~NewSnapd() {
    // As Withdraw: journals stop, ports leave their engines, the server lets go of everything.
    for (auto& [name, journal] : journals_) journal->Close();
    journals_.clear();
    for (auto& e : engines_) {
      e.engine->set_batch_observer(nullptr);
      for (const std::string& port : e.engine->PortNames()) e.engine->RemovePort(port);
    }
    if (server_) server_->Relinquish();
  }

  // Returns false where the real new snapd would give up (and send Failed).
  bool Brownout(const wire::Brownout& b, std::vector<UniqueFd>* fds) {
    auto handoff = snapd::upgrade::TakeMemifHandoff(b.memif(), fds);
    if (!handoff.ok()) return false;
    if (b.control_listener_fd() < fds->size()) {
      control_listener_ = std::move((*fds)[b.control_listener_fd()]);
    }
    if (b.journal_fd() < fds->size()) {
      auto journal = snapd::JournalMemory::Map(std::move((*fds)[b.journal_fd()]), b.journal_areas(),
                                               b.journal_capacity());
      if (!journal.ok()) return false;
      journal_ = std::make_unique<snapd::JournalMemory>(std::move(*journal));
    }
    const auto& cfg = b.config();
    for (int i = 0; i < cfg.engines_size() && i < static_cast<int>(kMaxEngines); ++i) {
      const auto& e = cfg.engines(i);
      auto engine = snapd::EngineRegistry::Global().Create(e.kind(), e.name(), e.config());
      if (!engine.ok()) return false;
      engines_.push_back({e.name(), std::move(*engine)});
    }
    memif::ServerOptions options;  // Daemon::MemifOptions, but never a socket path to unlink
    options.limits.max_queue_pairs = 1;
    auto server = memif::MemifServer::Adopt(options, std::move(handoff->listener));
    if (!server.ok()) return false;
    server_ = std::move(*server);
    for (int i = 0; i < cfg.apps_size() && i < static_cast<int>(kMaxApps); ++i) {
      const auto& app = cfg.apps(i);  // RegisterApp
      uint64_t mac = 0;
      uint32_t ipv4 = 0;
      snapd::ParseMac(app.mac(), &mac);
      snapd::ParseIpv4(app.ipv4(), &ipv4);
      if (!server_->AddInterface({app.id(), app.secret(), ""}).ok()) return false;
      apps_[app.id()] = {app.engine(), mac, ipv4};
    }
    server_->set_on_connected([this](memif::Connection& c) { OnAppConnected(c); });
    server_->set_on_disconnected([this](memif::Connection& c, absl::string_view) {
      auto app = apps_.find(c.id());  // OnAppDisconnected
      snapd::Engine* engine = app == apps_.end() ? nullptr : Find(app->second.engine);
      if (engine != nullptr) engine->RemovePort("app" + std::to_string(c.id()));
    });
    for (memif::ConnectionHandoff& c : handoff->connections) {
      if (!server_->AdoptConnection(std::move(c)).ok()) return false;
    }
    return true;
  }

  bool MoveIn(const wire::MoveEngine& m, Stream& in, uint8_t flags, Sender* s) {
    snapd::Engine* engine = Find(m.name());
    if (engine == nullptr) return false;
    if (!engine->RestoreState(m.state()).ok()) return false;
    snapd::ForEachAppPort(*engine, [](snapd::AppPort& app) { app.Resync(); });
    snapd::JournalArea* area = journal_ ? journal_->area(m.journal_area()) : nullptr;
    if (area != nullptr) {  // StartJournal
      engine->set_batch_observer(nullptr);
      journals_.erase(m.name());
      auto journal = std::make_unique<snapd::CursorJournal>(area, journal_->capacity());
      bool ok = true;
      snapd::ForEachAppPort(*engine, [&](snapd::AppPort& app) {
        if (ok) ok = journal->Track(&app).ok();
      });
      if (!ok) return false;
      engine->set_batch_observer(journal.get());
      journals_[m.name()] = std::move(journal);
    }
    // The worker polls it; the app (or the old snapd) moves ring heads meanwhile.
    for (int i = 0, n = 1 + in.Get<uint8_t>() % 4; i < n; ++i) {
      if ((flags & kMoveHeads) && !s->rings.empty()) {
        memif::RingHeader* r = s->rings[in.Get<uint8_t>() % s->rings.size()];
        __atomic_store_n(&r->head, in.Get<uint16_t>(), __ATOMIC_RELEASE);
      }
      engine->Poll();
      server_->DropFailedConnections();  // the daemon's loop, between polls here
    }
    return true;
  }

  // StopJournals, then the old snapd's view: taking back from whatever the journal says once the
  // new snapd (the sender, now) has written it.
  void Finish(const Sender& s, Stream& in) {
    for (auto& e : engines_) e.engine->set_batch_observer(nullptr);
    for (auto& [name, journal] : journals_) journal->Close();
    journals_.clear();
    if (!journal_) return;
    WriteJournal(s, in);
    for (uint32_t a = 0; a < std::min<uint32_t>(journal_->areas(), 8); ++a) {
      if (a >= engines_.size()) break;
      snapd::Engine& engine = *engines_[a].engine;
      snapd::RollForward(*journal_->area(a), journal_->capacity(),
                         [&](uint32_t app) -> snapd::AppPort* {
                           snapd::AppPort* found = nullptr;
                           snapd::ForEachAppPort(engine, [&](snapd::AppPort& p) {
                             if (p.app() == app) found = &p;
                           });
                           return found;
                         });
    }
  }

 private:
  struct EngineSlot {
    std::string name;
    std::unique_ptr<snapd::Engine> engine;
  };
  struct App {
    std::string engine;
    uint64_t mac;
    uint32_t ipv4;
  };

  snapd::Engine* Find(const std::string& name) {
    for (auto& e : engines_) {
      if (e.name == name) return e.engine.get();
    }
    return nullptr;
  }

  void OnAppConnected(memif::Connection& conn) {
    auto app = apps_.find(conn.id());
    // The daemon takes the app's engine for granted (FindEngine's result is not checked).
    snapd::Engine* engine = app == apps_.end() ? nullptr : Find(app->second.engine);
    if (engine == nullptr) return;
    snapd::engines::PortAttachment attach;
    uint8_t mac[6];
    snapd::MacToBytes(app->second.mac, mac);
    attach.set_mac(std::string(reinterpret_cast<char*>(mac), 6));
    attach.set_ipv4(app->second.ipv4);
    auto port = std::make_unique<snapd::AppPort>("app" + std::to_string(conn.id()), conn, 0);
    absl::Status status = engine->AddPort(std::move(port), attach);
    if (!status.ok()) server_->Disconnect(conn.id(), status.message());
  }

  UniqueFd control_listener_;
  std::unique_ptr<snapd::JournalMemory> journal_;
  std::vector<EngineSlot> engines_;
  std::map<uint32_t, App> apps_;
  std::unique_ptr<memif::MemifServer> server_;
  std::map<std::string, std::unique_ptr<snapd::CursorJournal>> journals_;
};

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n;
}

void Run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint8_t flags = data[0];
  const size_t count = 1 + data[1] % kMaxMessages;
  size_t off = 2;
  std::vector<std::string> messages;
  while (messages.size() < count && off + 2 <= size) {
    size_t len = std::min<size_t>(data[off] | (data[off + 1] << 8), size - off - 2);
    messages.emplace_back(reinterpret_cast<const char*>(data + off + 2), len);
    off += 2 + len;
  }
  Stream in(data + off, size - off);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return;
  UniqueFd old_end(sv[0]), new_end(sv[1]);
  Sender sender;
  for (const std::string& bytes : messages) {
    wire::Envelope e;
    bool parsed = e.ParseFromString(bytes);
    std::vector<Planned> plan = PlanFds(e, parsed, in);
    std::vector<UniqueFd> fds;
    for (Planned& p : plan) fds.push_back(MakeFd(p.role, p.size, in, &sender, &p.map));
    if (parsed && e.has_brownout()) FillRegions(e.brownout(), plan, in, &sender);
    SendMessage(old_end.get(), bytes, fds, flags, in);
  }
  old_end.reset();  // everything is in flight: the receiver never waits

  NewSnapd snapd;
  auto receive = [&](wire::Envelope* e, std::vector<UniqueFd>* fds) {
    auto raw = snapd::upgrade::ReceiveFdMessage(new_end.get(), absl::Seconds(1));
    if (!raw.ok() || !e->ParseFromString(raw->bytes) || e->has_failed()) return false;
    *fds = std::move(raw->fds);
    return true;
  };
  wire::Envelope e;
  std::vector<UniqueFd> fds;
  if (!receive(&e, &fds) || !e.has_brownout() || !snapd.Brownout(e.brownout(), &fds)) return;
  fds.clear();
  while (receive(&e, &fds)) {
    if (e.has_done()) {
      snapd.Finish(sender, in);
      return;
    }
    if (!e.has_move_engine() || !snapd.MoveIn(e.move_engine(), in, flags, &sender)) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = google::GLOG_FATAL;  // refusals log; the messages are still built
  // Protobuf logs each string field that is not UTF-8 (and parses on): noise, and slow.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int before = OpenFds();
  Run(data, size);
  // Whatever a hostile peer sends, the new snapd must not keep an fd of it after giving up. Fds
  // it refuses are closed on closer threads (ipc/peer_fd.h): wait for them, with a deadline.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (OpenFds() != before) {
    if (absl::Now() > deadline) __builtin_trap();
    sched_yield();
  }
  return 0;
}
