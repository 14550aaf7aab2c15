#include "snapd/daemon/config.h"

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(ConfigTest, EmbeddedDefaultNeedsNothing) {
  config::SnapdConfig cfg;
  cfg.set_run_dir("/tmp/x");
  ASSERT_TRUE(CompleteConfig(&cfg).ok());
  EXPECT_EQ(cfg.memif_socket(), "/tmp/x/memif.sock");
  ASSERT_EQ(cfg.nics_size(), 1);
  EXPECT_EQ(cfg.nics(0).devargs(), "net_null0,no-rx=1");
  EXPECT_EQ(cfg.nics(0).queues(), 1u);
  EXPECT_EQ(cfg.nics(0).engines(0), "vswitch0");
  ASSERT_EQ(cfg.engines_size(), 1);
  EXPECT_EQ(cfg.engines(0).kind(), "vswitch");
  EXPECT_EQ(cfg.engines(0).group(), "default");
  ASSERT_EQ(cfg.groups_size(), 1);
  EXPECT_EQ(cfg.groups(0).mode(), "spreading");
  EXPECT_EQ(cfg.groups(0).slo_us(), 200u);
}

TEST(ConfigTest, Flags) {
  auto nic = ParseNicFlag("net_af_packet0,iface=veth1@4");
  ASSERT_TRUE(nic.ok());
  EXPECT_EQ(nic->devargs(), "net_af_packet0,iface=veth1");
  EXPECT_EQ(nic->queues(), 4u);
  EXPECT_EQ(ParseNicFlag("net_tap0")->queues(), 0u);
  EXPECT_FALSE(ParseNicFlag("net_tap0@x").ok());
  EXPECT_FALSE(ParseNicFlag("net_tap0@0").ok());
  auto app = ParseAppFlag("id=3,mac=02:00:00:00:00:03,ip=10.0.0.3,secret=s,engine=e");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->id(), 3u);
  EXPECT_EQ(app->secret(), "s");
  EXPECT_EQ(app->engine(), "e");
  EXPECT_NE(ParseAppFlag("mac=02:00:00:00:00:03").status().message().find("id=N is required"),
            std::string::npos);
  EXPECT_NE(ParseAppFlag("id=1,color=red").status().message().find("unknown key 'color'"),
            std::string::npos);
  EXPECT_FALSE(app->has_uid());
  EXPECT_EQ(app->vlan(), 0u);
  auto full = ParseAppFlag(
      "id=4,mac=02:00:00:00:00:04,ip=10.0.0.4,ip6=fd00::4,ip6=fe80::4,vlan=100,uid=1000");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->ipv6_size(), 2);
  EXPECT_EQ(full->ipv6(1), "fe80::4");
  EXPECT_EQ(full->vlan(), 100u);
  ASSERT_TRUE(full->has_uid());
  EXPECT_EQ(full->uid(), 1000u);
  EXPECT_TRUE(ParseAppFlag("id=4,uid=0")->has_uid());
}

TEST(ConfigTest, BadAppFlagsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"id=1,vlan=0", "'0' is not a VLAN id in 1..4094"},
      {"id=1,vlan=4095", "'4095' is not a VLAN id in 1..4094"},
      {"id=1,vlan=x", "'x' is not a VLAN id"},
      {"id=1,uid=bob", "--app uid: 'bob' is not a uid"},
      {"id=1,uid=-1", "'-1' is not a uid"},
      {"id=1,uid=4294967295", "is not a uid"},
  };
  for (const auto& [flag, error] : cases) {
    SCOPED_TRACE(flag);
    auto app = ParseAppFlag(flag);
    ASSERT_FALSE(app.ok());
    EXPECT_NE(app.status().message().find(error), std::string::npos) << app.status();
  }
}

struct BadCase {
  const char* name;
  const char* text;
  const char* error;
};

TEST(ConfigTest, CheckedFieldsNameTheProblem) {
  const BadCase cases[] = {
      {"unknown kind", "engines { name: 'a' kind: 'router' }",
       "engines[0].kind: unknown engine kind 'router'"},
      {"duplicate engine", "engines { name: 'a' kind: 'echo' } engines { name: 'a' kind: 'echo' }",
       "engines[1].name: 'a' used twice"},
      {"nic to unknown engine", "nics { devargs: 'net_null0' engines: 'zz' }",
       "nics[0].engines: no engine named 'zz'"},
      {"same device twice", "nics { devargs: 'net_null0' } nics { devargs: 'net_null0,no-rx=1' }",
       "device 'net_null0' given twice"},
      {"too many queues", "nics { devargs: 'net_null0' queues: 100 }",
       "nics[0].queues: at most 64"},
      {"bad mac", "apps { id: 1 mac: '02:00' ipv4: '10.0.0.1' }", "apps[0].mac"},
      {"multicast mac", "apps { id: 1 mac: '01:00:00:00:00:01' ipv4: '10.0.0.1' }", "unicast"},
      {"bad ip", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0' }", "apps[0].ipv4"},
      {"duplicate id",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' } apps { id: 1 mac: "
       "'02:00:00:00:00:02' ipv4: '10.0.0.2' }",
       "apps[1].id: id 1 used twice"},
      {"duplicate mac",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' } apps { id: 2 mac: "
       "'02:00:00:00:00:01' ipv4: '10.0.0.2' }",
       "apps[1].mac: 02:00:00:00:00:01 given to two apps"},
      {"bad ipv6", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: 'fd00::1::2' }",
       "apps[0].ipv6: 'fd00::1::2' is not an IPv6 address"},
      {"ipv4 as ipv6", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: '10.0.0.1' }",
       "apps[0].ipv6: '10.0.0.1' is not an IPv6 address"},
      {"multicast ipv6", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: 'ff02::1' }",
       "apps[0].ipv6: 'ff02::1' is not a unicast address"},
      {"unspecified ipv6", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: '::' }",
       "is not a unicast address"},
      {"ipv6 twice",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: 'fd00::1' ipv6: "
       "'FD00::1' }",
       "apps[0].ipv6: 'FD00::1' given twice"},
      {"nine ipv6",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: ['fd00::1', 'fd00::2', "
       "'fd00::3', 'fd00::4', 'fd00::5', 'fd00::6', 'fd00::7', 'fd00::8', 'fd00::9'] }",
       "apps[0].ipv6: at most 8 addresses"},
      {"ipv6 of two apps",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' ipv6: 'fd00::1' } apps { id: 2 "
       "mac: '02:00:00:00:00:02' ipv4: '10.0.0.2' ipv6: 'fd00:0::1' }",
       "apps[1].ipv6: fd00:0::1 given to two apps (also app 1)"},
      {"vlan 4095", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' vlan: 4095 }",
       "apps[0].vlan: 4095 is not a VLAN id in 1..4094"},
      {"uid -1", "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' uid: 4294967295 }",
       "apps[0].uid: 4294967295 is not a uid"},
      {"bad mode", "groups { name: 'g' mode: 'turbo' }", "groups[0].mode: 'turbo' is not"},
      {"core out of range", "groups { name: 'g' cores: 99 }", "groups[0].cores: 99 is not a core"},
      {"core twice", "groups { name: 'g' cores: 0 cores: 0 }", "groups[0].cores: 0 given twice"},
      {"engine in unknown group", "engines { name: 'a' kind: 'echo' group: 'zz' }",
       "engines[0].group: no group named 'zz'"},
      {"long secret",
       "apps { id: 1 mac: '02:00:00:00:00:01' ipv4: '10.0.0.1' secret: '012345678901234567890123' "
       "}",
       "at most 23 bytes"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto cfg = ParseConfig(c.text);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg->set_run_dir("/tmp/x");
    absl::Status status = CompleteConfig(&*cfg);
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find(c.error), std::string::npos) << status;
  }
}

TEST(ConfigTest, TextErrorsNameTheLine) {
  auto cfg = ParseConfig("run_dir: '/x'\nbogus_field: 1\n", "snapd.conf");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("snapd.conf: line 2"), std::string::npos) << cfg.status();
  EXPECT_EQ(LoadConfigFile("/nonexistent/snapd.conf").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace snapd
