#include "engines/vswitch/vswitch_engine.h"

#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "engines/registry.h"
#include "engines/testing/fake_port.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

constexpr char kMacA[] = "02:00:00:00:00:0a";
constexpr char kMacB[] = "02:00:00:00:00:0b";
constexpr char kMacH[] = "02:00:00:00:00:11";  // a host behind nic1
constexpr char kIpA[] = "10.0.0.10";
constexpr char kIpB[] = "10.0.0.11";
constexpr char kBroadcast[] = "ff:ff:ff:ff:ff:ff";

std::string MacBytes(const char* text) {
  uint64_t mac;
  EXPECT_TRUE(ParseMac(text, &mac));
  std::string b(6, '\0');
  MacToBytes(mac, reinterpret_cast<uint8_t*>(b.data()));
  return b;
}

std::string IpBytes(const char* text) {
  uint32_t ip;
  EXPECT_TRUE(ParseIpv4(text, &ip));
  return std::string(reinterpret_cast<const char*>(&ip), 4);
}

// An Ethernet + IPv4 (UDP protocol number, no UDP header needed by the switch) frame.
std::string Ipv4Frame(const char* dst, const char* src, const char* ip_src, const char* ip_dst,
                      char tag = 'x') {
  std::string f = MacBytes(dst) + MacBytes(src) + std::string("\x08\x00", 2);
  std::string ip = std::string("\x45\x00\x00\x1c\x00\x00\x00\x00\x40\x11\x00\x00", 12) +
                   IpBytes(ip_src) + IpBytes(ip_dst) + std::string(8, tag);
  return f + ip;
}

std::string ArpFrame(const char* src_mac, const char* sender_ip, const char* target_ip) {
  return MacBytes(kBroadcast) + MacBytes(src_mac) + std::string("\x08\x06", 2) +
         std::string("\x00\x01\x08\x00\x06\x04\x00\x01", 8) + MacBytes(src_mac) +
         IpBytes(sender_ip) + std::string(6, '\0') + IpBytes(target_ip);
}

class VswitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = NewEngine();
    Attach(engine_.get());
  }

  static std::unique_ptr<Engine> NewEngine() {
    auto engine = EngineRegistry::Global().Create("vswitch", "sw", "");
    EXPECT_TRUE(engine.ok());
    return std::move(*engine);
  }

  // Attaches nic0, nic1, appA, appB to `engine`, remembering raw pointers to the ports.
  void Attach(Engine* engine) {
    auto add = [&](const char* name, PortKind kind, const char* mac, const char* ip) {
      auto port = std::make_unique<FakePort>(name, kind);
      FakePort* raw = port.get();
      engines::PortAttachment attach;
      if (mac) attach.set_mac(MacBytes(mac));
      if (ip) {
        uint32_t v;
        ParseIpv4(ip, &v);
        attach.set_ipv4(v);
      }
      EXPECT_TRUE(engine->AddPort(std::move(port), attach).ok());
      return raw;
    };
    nic0_ = add("nic0/q0", PortKind::kNic, nullptr, nullptr);
    nic1_ = add("nic1/q0", PortKind::kNic, nullptr, nullptr);
    a_ = add("appA", PortKind::kApp, kMacA, kIpA);
    b_ = add("appB", PortKind::kApp, kMacB, kIpB);
  }

  void Run() {
    while (engine_->Poll() > 0) {
    }
  }

  std::unique_ptr<Engine> engine_;
  FakePort* nic0_;
  FakePort* nic1_;
  FakePort* a_;
  FakePort* b_;
};

TEST_F(VswitchTest, BroadcastReachesEveryOtherPort) {
  a_->Inject(ArpFrame(kMacA, kIpA, "10.0.0.99"));
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(nic1_->TakeSent().size(), 1u);
  EXPECT_EQ(b_->TakeSent().size(), 1u);
  EXPECT_TRUE(a_->TakeSent().empty());
}

TEST_F(VswitchTest, UnicastToAnAppReachesOnlyThatApp) {
  std::string f = Ipv4Frame(kMacA, kMacH, "10.0.0.50", kIpA);
  nic1_->Inject(f);
  Run();
  EXPECT_EQ(a_->TakeSent(), std::vector<std::string>{f});
  EXPECT_TRUE(b_->TakeSent().empty());
  EXPECT_TRUE(nic0_->TakeSent().empty());
}

TEST_F(VswitchTest, AppToAppUnicastSkipsEveryoneElse) {
  std::string f = Ipv4Frame(kMacB, kMacA, kIpA, kIpB);
  a_->Inject(f);
  Run();
  EXPECT_EQ(b_->TakeSent(), std::vector<std::string>{f});
  EXPECT_TRUE(nic0_->TakeSent().empty());
  EXPECT_TRUE(nic1_->TakeSent().empty());
}

TEST_F(VswitchTest, UnknownUnicastFloodsNicsButNeverApps) {
  a_->Inject(Ipv4Frame("02:00:00:00:00:77", kMacA, kIpA, "10.0.0.77"));
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(nic1_->TakeSent().size(), 1u);
  EXPECT_TRUE(b_->TakeSent().empty());
}

TEST_F(VswitchTest, LearnedMacsSteerUnicast) {
  nic1_->Inject(Ipv4Frame(kBroadcast, kMacH, "10.0.0.50", "10.0.0.255"));
  Run();
  nic0_->TakeSent();
  a_->TakeSent();
  b_->TakeSent();
  a_->Inject(Ipv4Frame(kMacH, kMacA, kIpA, "10.0.0.50"));
  Run();
  EXPECT_EQ(nic1_->TakeSent().size(), 1u);
  EXPECT_TRUE(nic0_->TakeSent().empty());
  EXPECT_EQ(static_cast<VswitchEngine*>(engine_.get())->PortFor(0x110000000002), "nic1/q0");
}

// Kind counters as stats read them.
std::map<std::string, uint64_t> KindCounters(const Engine& e) {
  std::map<std::string, uint64_t> out;
  e.ForEachKindCounter([&](absl::string_view name, uint64_t v) { out[std::string(name)] = v; });
  return out;
}

TEST_F(VswitchTest, FullMacTableIsCountedAndTheCountSurvivesAMove) {
  // The smallest table: 16 entries, two of them apps A and B's.
  auto engine =
      EngineRegistry::Global().Create("vswitch", "small", "mac_table_size: 16 mac_learn_limit: 16");
  ASSERT_TRUE(engine.ok());
  engine_ = std::move(*engine);
  Attach(engine_.get());
  for (int h = 0; h < 16; ++h) {
    std::string mac = absl::StrFormat("02:00:00:00:01:%02x", h);
    nic0_->Inject(Ipv4Frame(kBroadcast, mac.c_str(), "10.0.0.50", "10.0.0.255"));
    Run();
  }
  // Fourteen hosts learned, two not: their frames still went out, and were counted.
  EXPECT_EQ(nic1_->TakeSent().size(), 16u);
  EXPECT_EQ(KindCounters(*engine_)["mac_table_full"], 2u);
  engines::EngineState state;
  ASSERT_TRUE(engine_->SaveState(&state).ok());
  auto restored = EngineRegistry::Global().Create("vswitch", "small", "mac_table_size: 16");
  ASSERT_TRUE(restored.ok());
  ASSERT_TRUE((*restored)->RestoreState(state).ok());
  EXPECT_EQ(KindCounters(**restored)["mac_table_full"], 2u);
}

// 5000 distinct source MACs from one NIC into the default table (4096; a NIC may hold 2048): the
// rest are forwarded but not learned, and counted; apps attach during and after the flood; other
// NICs still learn; the counters survive a move.
TEST_F(VswitchTest, MacFloodFromTheWireKeepsAppsAndOtherNicsWorking) {
  auto c = std::make_unique<FakePort>("appC", PortKind::kApp);
  FakePort* app_c = c.get();
  for (int h = 0; h < 5000; ++h) {
    std::string mac = absl::StrFormat("02:00:%02x:%02x:00:01", h >> 8, h & 0xff);
    nic0_->Inject(Ipv4Frame(kBroadcast, mac.c_str(), "10.0.0.50", "10.0.0.255"));
    if (h == 4000) {
      Run();
      engines::PortAttachment attach;
      attach.set_mac(MacBytes("02:00:00:00:00:0c"));
      ASSERT_TRUE(engine_->AddPort(std::move(c), attach).ok());
    }
  }
  Run();
  EXPECT_EQ(nic1_->TakeSent().size(), 5000u);  // every frame was forwarded
  EXPECT_EQ(app_c->TakeSent().size(), 999u);   // the broadcasts after it attached
  std::map<std::string, uint64_t> counters = KindCounters(*engine_);
  // (An app's MAC that evicts a learned one makes room for another.)
  EXPECT_EQ(counters["mac_learn_limit"] + counters["mac_table_full"] + counters["mac_evicted"],
            5000u - 2048u);
  EXPECT_GT(counters["mac_learn_limit"], 0u);
  // An app attaches after the flood, and unicast from the wire reaches each app.
  engines::PortAttachment attach;
  attach.set_mac(MacBytes("02:00:00:00:00:0d"));
  auto d = std::make_unique<FakePort>("appD", PortKind::kApp);
  FakePort* app_d = d.get();
  ASSERT_TRUE(engine_->AddPort(std::move(d), attach).ok());
  nic1_->Inject(Ipv4Frame("02:00:00:00:00:0c", kMacH, "10.0.0.50", "10.0.0.12"));
  nic1_->Inject(Ipv4Frame("02:00:00:00:00:0d", kMacH, "10.0.0.50", "10.0.0.13"));
  Run();
  EXPECT_EQ(app_c->TakeSent().size(), 1u);
  EXPECT_EQ(app_d->TakeSent().size(), 1u);
  // nic1 learns despite nic0's flood: hosts behind it are found (at half load, 0.4% of MACs find
  // their 16 slots full: at least 14 of 16 hosts).
  auto* sw = static_cast<VswitchEngine*>(engine_.get());
  int learned = 0;
  for (int h = 0; h < 16; ++h) {
    std::string mac = absl::StrFormat("02:00:00:00:02:%02x", h);
    nic1_->Inject(Ipv4Frame(kBroadcast, mac.c_str(), "10.0.0.50", "10.0.0.255"));
    Run();
    uint64_t m;
    ParseMac(mac, &m);
    learned += sw->PortFor(m) == "nic1/q0";
  }
  EXPECT_GE(learned, 14);
  engines::EngineState state;
  ASSERT_TRUE(engine_->SaveState(&state).ok());
  auto restored = NewEngine();
  ASSERT_TRUE(restored->RestoreState(state).ok());
  EXPECT_EQ(KindCounters(*restored)["mac_learn_limit"], counters["mac_learn_limit"]);
}

TEST_F(VswitchTest, LearnLimitIsConfigurable) {
  auto engine = EngineRegistry::Global().Create("vswitch", "lim", "mac_learn_limit: 3");
  ASSERT_TRUE(engine.ok());
  engine_ = std::move(*engine);
  Attach(engine_.get());
  for (int h = 0; h < 5; ++h) {
    std::string mac = absl::StrFormat("02:00:00:00:01:%02x", h);
    nic0_->Inject(Ipv4Frame(kBroadcast, mac.c_str(), "10.0.0.50", "10.0.0.255"));
  }
  Run();
  EXPECT_EQ(KindCounters(*engine_)["mac_learn_limit"], 2u);
  EXPECT_FALSE(EngineRegistry::Global()
                   .Create("vswitch", "bad", "mac_table_size: 64 mac_learn_limit: 65")
                   .ok());
}

// A MAC that moves to a NIC at its learning limit is forgotten (frames to it flood rather than go
// to the link it left), and that is counted, not silent.
TEST_F(VswitchTest, MacMovingToANicAtItsLimitIsForgottenAndCounted) {
  auto engine = EngineRegistry::Global().Create("vswitch", "lim", "mac_learn_limit: 1");
  ASSERT_TRUE(engine.ok());
  engine_ = std::move(*engine);
  Attach(engine_.get());
  auto* sw = static_cast<VswitchEngine*>(engine_.get());
  nic0_->Inject(Ipv4Frame(kBroadcast, kMacH, "10.0.0.50", "10.0.0.255"));
  nic1_->Inject(Ipv4Frame(kBroadcast, "02:00:00:00:00:12", "10.0.0.51", "10.0.0.255"));
  Run();
  ASSERT_EQ(sw->PortFor(0x110000000002), "nic0/q0");
  ASSERT_EQ(KindCounters(*engine_)["mac_learn_limit"], 0u);
  nic1_->Inject(Ipv4Frame(kBroadcast, kMacH, "10.0.0.50", "10.0.0.255"));  // H moves to nic1
  Run();
  EXPECT_EQ(sw->PortFor(0x110000000002), "");
  EXPECT_EQ(KindCounters(*engine_)["mac_learn_limit"], 1u);
}

TEST_F(VswitchTest, SpoofedFramesFromAppsAreDroppedAndCounted) {
  a_->Inject(Ipv4Frame(kBroadcast, kMacB, kIpA, "10.0.0.255"));  // B's MAC
  a_->Inject(Ipv4Frame(kBroadcast, kMacA, kIpB, "10.0.0.255"));  // B's IP
  a_->Inject(ArpFrame(kMacA, kIpB, "10.0.0.1"));                 // ARP claiming B's IP
  a_->Inject(Ipv4Frame(kBroadcast, kMacA, kIpA, "10.0.0.255"));  // fine
  Run();
  EXPECT_EQ(a_->stats().drop_spoofed.Get(), 3u);
  EXPECT_EQ(b_->TakeSent().size(), 1u);
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(engine_->stats().drops.Get(), 3u);
}

std::string Hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// An IPv6 UDP frame from `src_ip6` behind the tags given as hex ("8100 0007").
std::string Ipv6Frame(const char* dst, const char* src, const char* src_ip6,
                      const std::string& tags_hex = "") {
  Ipv6Address ip;
  EXPECT_TRUE(ParseIpv6(src_ip6, &ip));
  Ipv6Address to;
  ParseIpv6("fd00::99", &to);
  return MacBytes(dst) + MacBytes(src) + Hex(tags_hex) + Hex("86dd") + Hex("6000000000081140") +
         std::string(reinterpret_cast<const char*>(ip.w), 16) +
         std::string(reinterpret_cast<const char*>(to.w), 16) + std::string(8, 'u');
}

// Each kind of frame an app may not send is dropped, counted on its port and by reason, and
// reaches no one; an app given IPv6 addresses and a VLAN may send those.
TEST_F(VswitchTest, AppEgressIsDefaultDeny) {
  const std::string tag7 = Hex("81000007");
  const std::string ipv4 = Ipv4Frame(kBroadcast, kMacA, kIpA, "10.0.0.255").substr(12);
  a_->Inject(Ipv6Frame(kBroadcast, kMacA, "fd00::a"));                        // no IPv6
  a_->Inject(MacBytes(kBroadcast) + MacBytes(kMacA) + tag7 + ipv4);           // no VLAN
  a_->Inject(MacBytes("01:80:c2:00:00:0e") + MacBytes(kMacA) + Hex("88cc") +  // LLDP
             std::string(40, 'l'));
  a_->Inject(MacBytes("01:80:c2:00:00:00") + MacBytes(kMacA) + Hex("0026") +  // STP
             std::string(40, 's'));
  a_->Inject(MacBytes(kBroadcast) + MacBytes(kMacA) + Hex("88b5") + std::string(40, 'x'));
  a_->Inject(MacBytes(kBroadcast) + MacBytes(kMacA) + Hex("91000007") + ipv4);  // 0x9100
  a_->Inject(Ipv4Frame(kBroadcast, kMacA, kIpA, "10.0.0.255"));                 // fine
  Run();
  EXPECT_EQ(a_->stats().drop_spoofed.Get(), 6u);
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(b_->TakeSent().size(), 1u);
  std::map<std::string, uint64_t> counters = KindCounters(*engine_);
  EXPECT_EQ(counters["egress_drop_ipv6"], 1u);
  EXPECT_EQ(counters["egress_drop_vlan"], 2u);
  EXPECT_EQ(counters["egress_drop_link_local"], 2u);
  EXPECT_EQ(counters["egress_drop_ethertype"], 1u);

  // App C: IPv6 fd00::c and VLAN 7.
  engines::PortAttachment attach;
  attach.set_mac(MacBytes("02:00:00:00:00:0c"));
  uint32_t v4;
  ParseIpv4("10.0.0.12", &v4);
  attach.set_ipv4(v4);
  Ipv6Address ip6;
  ParseIpv6("fd00::c", &ip6);
  attach.add_ipv6(std::string(reinterpret_cast<const char*>(ip6.w), 16));
  attach.set_vlan(7);
  auto port = std::make_unique<FakePort>("appC", PortKind::kApp);
  FakePort* c = port.get();
  ASSERT_TRUE(engine_->AddPort(std::move(port), attach).ok());
  c->Inject(Ipv6Frame("02:00:00:00:00:77", "02:00:00:00:00:0c", "fd00::c", "81000007"));
  c->Inject(Ipv6Frame("02:00:00:00:00:77", "02:00:00:00:00:0c", "fd00::c"));  // untagged
  c->Inject(Ipv6Frame("02:00:00:00:00:77", "02:00:00:00:00:0c", "fd00::a", "81000007"));  // not its
  c->Inject(Ipv6Frame("02:00:00:00:00:77", "02:00:00:00:00:0c", "fd00::c", "81000008"));  // VLAN 8
  c->Inject(Ipv6Frame("02:00:00:00:00:77", "02:00:00:00:00:0c", "fd00::c", "8100a007"));  // PCP 5
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(c->stats().drop_spoofed.Get(), 4u);
  counters = KindCounters(*engine_);
  EXPECT_EQ(counters["egress_drop_ipv6_src"], 1u);
  EXPECT_EQ(counters["egress_drop_vlan"], 5u);

  // The counters survive a move.
  engines::EngineState state;
  ASSERT_TRUE(engine_->SaveState(&state).ok());
  auto restored = NewEngine();
  ASSERT_TRUE(restored->RestoreState(state).ok());
  EXPECT_EQ(KindCounters(*restored), counters);
}

// An IPv4 frame of `protocol` from app A's MAC and address carrying `l4` (as hex).
std::string Ipv4FromA(const char* dst, const char* ip_dst, int protocol, const std::string& l4) {
  std::string body = Hex(l4);
  int total = 20 + static_cast<int>(body.size());
  std::string ip = std::string("\x45\x00", 2) + static_cast<char>(total >> 8) +
                   static_cast<char>(total & 0xff) + std::string("\x00\x00\x00\x00\x40", 5) +
                   static_cast<char>(protocol) + std::string(2, '\0') + IpBytes(kIpA) +
                   IpBytes(ip_dst) + body;
  return MacBytes(dst) + MacBytes(kMacA) + Hex("0800") + ip;
}

// An app is no DHCP server, multicast querier nor router: those frames reach no one and are
// counted by reason; a DHCP client's and an IGMP report go out.
TEST_F(VswitchTest, AppIsNoServerOfTheLink) {
  a_->Inject(Ipv4FromA(kBroadcast, "255.255.255.255", 17, "0043004400080000"));     // DHCP offer
  a_->Inject(Ipv4FromA("01:00:5e:00:00:01", "224.0.0.1", 2, "1100000000000000"));   // IGMP query
  a_->Inject(Ipv4FromA(kMacB, kIpB, 1, "0501000000000000"));                        // redirect
  a_->Inject(Ipv4FromA(kBroadcast, "255.255.255.255", 17, "0044004300080000"));     // DHCP client
  a_->Inject(Ipv4FromA("01:00:5e:00:00:16", "224.0.0.22", 2, "2200000000000000"));  // report
  Run();
  EXPECT_EQ(a_->stats().drop_spoofed.Get(), 3u);
  EXPECT_EQ(b_->TakeSent().size(), 2u);
  EXPECT_EQ(nic0_->TakeSent().size(), 2u);
  std::map<std::string, uint64_t> counters = KindCounters(*engine_);
  EXPECT_EQ(counters["egress_drop_dhcp_server"], 1u);
  EXPECT_EQ(counters["egress_drop_querier"], 1u);
  EXPECT_EQ(counters["egress_drop_ra"], 1u);
}

// Each app floods (broadcast, multicast, unknown unicast) at most app_flood_rate frames a second
// after a burst of app_flood_burst; unicast to a known MAC is not limited, nor are other apps.
TEST_F(VswitchTest, AppFloodsAreRateLimited) {
  auto engine =
      EngineRegistry::Global().Create("vswitch", "fl", "app_flood_rate: 1 app_flood_burst: 5");
  ASSERT_TRUE(engine.ok());
  engine_ = std::move(*engine);
  Attach(engine_.get());
  for (int i = 0; i < 20; ++i) a_->Inject(ArpFrame(kMacA, kIpA, "10.0.0.99"));
  for (int i = 0; i < 3; ++i) a_->Inject(Ipv4Frame("02:00:00:00:00:77", kMacA, kIpA, "10.0.0.77"));
  for (int i = 0; i < 10; ++i) a_->Inject(Ipv4Frame(kMacB, kMacA, kIpA, kIpB));
  for (int i = 0; i < 3; ++i) b_->Inject(ArpFrame(kMacB, kIpB, "10.0.0.99"));
  Run();
  // A's first 5 floods (its burst; one a second after that) and its 10 frames to B; B's 3.
  EXPECT_EQ(nic0_->TakeSent().size(), 5u + 3u);
  EXPECT_EQ(b_->TakeSent().size(), 5u + 10u);
  EXPECT_EQ(a_->TakeSent().size(), 3u);
  EXPECT_EQ(KindCounters(*engine_)["egress_drop_flood_rate"], 18u);
  EXPECT_EQ(engine_->stats().drops.Get(), 18u);
  EXPECT_FALSE(EngineRegistry::Global().Create("vswitch", "bad", "app_flood_rate: 100000001").ok());
  EXPECT_FALSE(EngineRegistry::Global().Create("vswitch", "bad", "app_flood_burst: 1000001").ok());
  // The defaults (10000 a second, bursts of 1000) let an ordinary app's broadcasts through.
  engine_ = NewEngine();
  Attach(engine_.get());
  for (int i = 0; i < 1000; ++i) a_->Inject(ArpFrame(kMacA, kIpA, "10.0.0.99"));
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1000u);
}

TEST_F(VswitchTest, BadAppAddressesAreRefused) {
  engines::PortAttachment attach;
  attach.set_mac(MacBytes("02:00:00:00:00:0c"));
  attach.set_vlan(4095);
  EXPECT_EQ(engine_->AddPort(std::make_unique<FakePort>("appC", PortKind::kApp), attach).code(),
            absl::StatusCode::kInvalidArgument);
  attach.set_vlan(0);
  attach.add_ipv6("short");
  EXPECT_EQ(engine_->AddPort(std::make_unique<FakePort>("appC", PortKind::kApp), attach).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VswitchTest, AppCannotChangeAFrameBetweenCheckAndSend) {
  std::string f = Ipv4Frame(kMacB, kMacA, kIpA, kIpB);
  a_->Inject(f);
  // While the switch transmits to B, app A rewrites the source MAC in its own buffer.
  b_->set_on_transmit([&] {
    for (std::string& held : a_->held()) held.replace(6, 6, MacBytes("02:00:00:00:00:66"));
  });
  Run();
  EXPECT_EQ(b_->TakeSent(), std::vector<std::string>{f});  // what was checked is what was sent
}

TEST_F(VswitchTest, NicHostClaimingAnAppMacIsDropped) {
  nic0_->Inject(Ipv4Frame(kBroadcast, kMacA, "10.0.0.66", "10.0.0.255"));
  Run();
  EXPECT_EQ(nic0_->stats().drop_spoofed.Get(), 1u);
  EXPECT_TRUE(b_->TakeSent().empty());
  // And the app's MAC still leads to the app.
  EXPECT_EQ(static_cast<VswitchEngine*>(engine_.get())->PortFor(0x0a0000000002), "appA");
}

TEST_F(VswitchTest, MalformedFramesAreDroppedAndCounted) {
  nic0_->Inject("short");
  nic0_->Inject(Ipv4Frame(kMacA, kMacH, "10.0.0.50", kIpA).substr(0, 30));  // cut IPv4 header
  nic0_->Inject(std::string(20000, 'x'));                                   // offload super-frame
  Run();
  EXPECT_EQ(nic0_->stats().drop_malformed.Get(), 3u);
  EXPECT_TRUE(a_->TakeSent().empty());
  EXPECT_EQ(nic0_->stats().rx_frames.Get(), 3u);
}

TEST_F(VswitchTest, FullTransmitQueueIsCountedAsDrops) {
  b_->set_tx_room(1);
  for (int i = 0; i < 5; ++i) a_->Inject(Ipv4Frame(kMacB, kMacA, kIpA, kIpB));
  Run();
  EXPECT_EQ(b_->TakeSent().size(), 1u);
  EXPECT_EQ(b_->stats().tx_dropped.Get(), 4u);
  EXPECT_EQ(b_->stats().tx_frames.Get(), 1u);
}

TEST(VswitchMtuTest, FramesOverTheEgressPortsMtuAreDroppedAndCounted) {
  auto engine = EngineRegistry::Global().Create("vswitch", "sw", "");
  ASSERT_TRUE(engine.ok());
  auto small = std::make_unique<FakePort>("nic0/q0", PortKind::kNic);
  small->set_mtu(1500);
  auto jumbo = std::make_unique<FakePort>("nic1/q0", PortKind::kNic);
  jumbo->set_mtu(9000);
  FakePort* to_small = small.get();
  FakePort* to_jumbo = jumbo.get();
  ASSERT_TRUE((*engine)->AddPort(std::move(small), {}).ok());
  ASSERT_TRUE((*engine)->AddPort(std::move(jumbo), {}).ok());
  // Broadcast frames of a local ethertype with `payload` bytes after the header (and a tag).
  auto frame = [](uint32_t payload, bool tagged) {
    std::string f = MacBytes(kBroadcast) + MacBytes(kMacH);
    if (tagged) f += std::string("\x81\x00\x00\x07", 4);
    return f + std::string("\x88\xb5", 2) + std::string(payload, 'p');
  };
  for (uint32_t payload : {1500u, 1501u, 8000u, 9000u}) to_jumbo->Inject(frame(payload, false));
  to_jumbo->Inject(frame(1500, true));  // 1518 bytes: the tag does not count
  to_jumbo->Inject(frame(1502, true));
  while ((*engine)->Poll() > 0) {
  }
  std::vector<std::string> sent = to_small->TakeSent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].size(), 1514u);
  EXPECT_EQ(sent[1].size(), 1518u);
  EXPECT_EQ(to_small->stats().drop_oversize.Get(), 4u);
  EXPECT_EQ(to_small->stats().tx_frames.Get(), 2u);
  // A jumbo frame from the small port's side reaches the jumbo port: 9000 is its limit.
  to_small->Inject(frame(9000, false));
  to_small->Inject(frame(9001, false));
  while ((*engine)->Poll() > 0) {
  }
  ASSERT_EQ(to_jumbo->TakeSent().size(), 1u);
  EXPECT_EQ(to_jumbo->stats().drop_oversize.Get(), 1u);
}

TEST_F(VswitchTest, RemovedAppIsForgotten) {
  std::unique_ptr<Port> gone = engine_->RemovePort("appB");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(engine_->RemovePort("appB"), nullptr);
  a_->Inject(Ipv4Frame(kMacB, kMacA, kIpA, kIpB));
  Run();  // B's MAC is unknown now: flooded to the NICs only
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(engine_->PortNames(), (std::vector<std::string>{"nic0/q0", "nic1/q0", "appA"}));
}

TEST_F(VswitchTest, DuplicatePortAndBadAttachmentAreRefused) {
  EXPECT_EQ(engine_->AddPort(std::make_unique<FakePort>("appA", PortKind::kApp), {}).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine_->AddPort(std::make_unique<FakePort>("appC", PortKind::kApp), {}).code(),
            absl::StatusCode::kInvalidArgument);
  engines::PortAttachment multicast;
  multicast.set_mac(MacBytes("01:00:5e:00:00:01"));
  EXPECT_EQ(engine_->AddPort(std::make_unique<FakePort>("appC", PortKind::kApp), multicast).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VswitchTest, RestoredEngineForwardsAsTheSavedOneDid) {
  nic1_->Inject(Ipv4Frame(kBroadcast, kMacH, "10.0.0.50", "10.0.0.255"));
  Run();
  engines::EngineState state;
  ASSERT_TRUE(engine_->SaveState(&state).ok());
  EXPECT_EQ(state.kind(), "vswitch");
  EXPECT_EQ(state.counters().frames(), 1u);

  // A new engine, restored before its ports come back (as in an upgrade).
  engine_ = NewEngine();
  ASSERT_TRUE(engine_->RestoreState(state).ok());
  Attach(engine_.get());
  a_->Inject(Ipv4Frame(kMacH, kMacA, kIpA, "10.0.0.50"));
  Run();
  EXPECT_EQ(nic1_->TakeSent().size(), 1u);  // no flood: H is still known on nic1
  EXPECT_TRUE(nic0_->TakeSent().empty());
  EXPECT_EQ(engine_->stats().frames.Get(), 2u);  // counters continue

  // A fresh engine without the state floods instead.
  engine_ = NewEngine();
  Attach(engine_.get());
  a_->Inject(Ipv4Frame(kMacH, kMacA, kIpA, "10.0.0.50"));
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
}

// A saved state from an old or hostile snapd: an entry older than the ageing time (INT64_MAX
// among them, which overflowed the ageing arithmetic) is not restored, one from the future is taken
// as just seen, and mac_table_full given both in its field and in `counters` counts once.
TEST_F(VswitchTest, RestoredStateWithHostileAgesAndCounters) {
  engines::VswitchState kind;
  auto add = [&](const char* mac, int64_t age_ns) {
    engines::VswitchMacEntry* e = kind.add_learned();
    e->set_mac(MacBytes(mac));
    e->set_port("nic1/q0");
    e->set_age_ns(age_ns);
  };
  add("02:00:00:00:03:01", INT64_MAX);
  add("02:00:00:00:03:02", int64_t{301} * 1000000000);  // past the default 300 s
  add("02:00:00:00:03:03", INT64_MIN);
  add("02:00:00:00:03:04", int64_t{10} * 1000000000);
  kind.set_mac_table_full(2);
  (*kind.mutable_counters())["mac_table_full"] = 2;
  (*kind.mutable_counters())["mac_evicted"] = 3;
  engines::EngineState state;
  state.set_kind("vswitch");
  ASSERT_TRUE(kind.SerializeToString(state.mutable_kind_state()));
  engine_ = NewEngine();
  ASSERT_TRUE(engine_->RestoreState(state).ok());
  Attach(engine_.get());
  auto* sw = static_cast<VswitchEngine*>(engine_.get());
  auto port_for = [&](const char* mac) {
    uint64_t m;
    ParseMac(mac, &m);
    return sw->PortFor(m);
  };
  EXPECT_EQ(port_for("02:00:00:00:03:01"), "");
  EXPECT_EQ(port_for("02:00:00:00:03:02"), "");
  EXPECT_EQ(port_for("02:00:00:00:03:03"), "nic1/q0");
  EXPECT_EQ(port_for("02:00:00:00:03:04"), "nic1/q0");
  // Traffic goes on (the table's ageing arithmetic meets the restored entries on every lookup).
  a_->Inject(Ipv4Frame("02:00:00:00:03:03", kMacA, kIpA, "10.0.0.50"));
  Run();
  EXPECT_EQ(nic1_->TakeSent().size(), 1u);
  std::map<std::string, uint64_t> counters = KindCounters(*engine_);
  EXPECT_EQ(counters["mac_table_full"], 2u);
  EXPECT_EQ(counters["mac_evicted"], 3u);
}

TEST_F(VswitchTest, QueuesOfOneNicAreOneLink) {
  // A second queue of nic1: floods must leave through one queue of each NIC only, and nothing
  // goes from one queue of a NIC back out another of the same NIC.
  auto q1 = std::make_unique<FakePort>("nic1/q1", PortKind::kNic, 1 << 20, "nic1/q0");
  FakePort* nic1_q1 = q1.get();
  ASSERT_TRUE(engine_->AddPort(std::move(q1), {}).ok());
  a_->Inject(ArpFrame(kMacA, kIpA, "10.0.0.99"));
  Run();
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(nic1_->TakeSent().size() + nic1_q1->TakeSent().size(), 1u);
  b_->TakeSent();
  nic1_q1->Inject(Ipv4Frame(kBroadcast, kMacH, "10.0.0.50", "10.0.0.255"));
  Run();
  EXPECT_TRUE(nic1_->TakeSent().empty());
  EXPECT_EQ(nic0_->TakeSent().size(), 1u);
  EXPECT_EQ(a_->TakeSent().size(), 1u);
  // H was learned on nic1/q1; a frame to H from the other queue of nic1 is not hairpinned.
  nic1_->Inject(Ipv4Frame(kMacH, "02:00:00:00:00:12", "10.0.0.51", "10.0.0.50"));
  Run();
  EXPECT_TRUE(nic1_q1->TakeSent().empty());
  EXPECT_TRUE(nic1_->TakeSent().empty());
}

TEST_F(VswitchTest, StateOfAnotherKindIsRefused) {
  engines::EngineState state;
  state.set_kind("echo");
  EXPECT_EQ(engine_->RestoreState(state).code(), absl::StatusCode::kInvalidArgument);
  state.set_kind("vswitch");
  state.set_kind_state("\xff\xff garbage");
  EXPECT_FALSE(engine_->RestoreState(state).ok());
}

TEST_F(VswitchTest, BacklogShowsAsQueueingDelay) {
  for (int i = 0; i < 100; ++i) a_->Inject(Ipv4Frame(kMacB, kMacA, kIpA, kIpB));
  engine_->Poll();  // a full burst of 32: work is left waiting
  int64_t now = MonotonicNs();
  EXPECT_GE(engine_->QueueingDelayNs(now + 1000), 1000);
  Run();
  EXPECT_EQ(engine_->QueueingDelayNs(MonotonicNs()), 0);
}

}  // namespace
}  // namespace snapd
