#include "control/metrics.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace snapd {
namespace {

v1::Stats SomeStats() {
  v1::Stats s;
  v1::Engine* e = s.add_engines();
  e->set_name("vswitch0");
  e->set_kind("vswitch");
  e->set_group("default");
  e->mutable_stats()->set_frames(1234);
  e->mutable_stats()->set_drops(5);
  e->mutable_stats()->set_busy_percent(25);
  e->mutable_stats()->set_queueing_delay_p99_ns(1500000);
  (*e->mutable_stats()->mutable_kind_counters())["mac_table_full"] = 7;
  v1::Port* p = s.add_ports();
  p->set_name("app1");
  p->set_engine("vswitch0");
  p->set_kind("app");
  p->set_link("app1");
  p->mutable_stats()->set_rx_frames(10);
  p->mutable_stats()->set_drop_spoofed(3);
  v1::Nic* n = s.add_nics();
  n->set_name("nic0");
  n->set_device("net_af_packet0,iface=\"v\"");
  n->set_link_up(true);
  n->set_rx_missed(2);
  s.set_apps_attached(4);
  return s;
}

void SomeBlackouts(v1::DaemonInfo* info) {
  info->add_blackout_bounds_us(50);
  info->add_blackouts_at_most(1);
  info->add_blackout_bounds_us(250000);
  info->add_blackouts_at_most(3);
  info->set_blackout_count(4);
  info->set_blackout_sum_us(1500000);
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsTest, CountersByNameWithLabelsForWhereAndWhy) {
  v1::DaemonInfo info;
  info.set_version("0.9");
  info.set_build("snapd@abc");
  info.set_upgrades(3);
  const std::string t = PrometheusText(SomeStats(), info);
  EXPECT_TRUE(Has(t, "snapd_build_info{version=\"0.9\",binary=\"snapd@abc\"} 1")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrades_total 3")) << t;
  EXPECT_TRUE(Has(t, "# TYPE snapd_engine_frames_total counter")) << t;
  EXPECT_TRUE(Has(
      t, "snapd_engine_frames_total{engine=\"vswitch0\",kind=\"vswitch\",group=\"default\"} 1234"))
      << t;
  EXPECT_TRUE(
      Has(t, "snapd_engine_drops_total{engine=\"vswitch0\",kind=\"vswitch\",group=\"default\"} 5"));
  EXPECT_TRUE(Has(t,
                  "snapd_engine_busy_ratio{engine=\"vswitch0\",kind=\"vswitch\",group=\"default\"} "
                  "0.25"));
  EXPECT_TRUE(Has(t,
                  "snapd_engine_queueing_delay_recent_seconds{engine=\"vswitch0\",kind="
                  "\"vswitch\",group=\"default\",percentile=\"99\"} 0.0015"));
  EXPECT_TRUE(Has(t,
                  "snapd_engine_kind_events_total{engine=\"vswitch0\",kind=\"vswitch\",group="
                  "\"default\",counter=\"mac_table_full\"} 7"));
  EXPECT_TRUE(Has(t,
                  "snapd_port_rx_frames_total{port=\"app1\",engine=\"vswitch0\",kind=\"app\",link="
                  "\"app1\"} 10"));
  EXPECT_TRUE(Has(t,
                  "snapd_port_dropped_frames_total{port=\"app1\",engine=\"vswitch0\",kind=\"app\","
                  "link=\"app1\",reason=\"spoofed\"} 3"));
  // A device string's quotes are escaped in its label.
  EXPECT_TRUE(
      Has(t,
          "snapd_nic_dropped_frames_total{nic=\"nic0\",device=\"net_af_packet0,iface=\\\"v\\\""
          "\",reason=\"rx_missed\"} 2"))
      << t;
  EXPECT_TRUE(Has(t, "snapd_apps_attached_total 4"));
  // Each family's HELP and TYPE once, before its samples.
  size_t at = 0;
  int types = 0;
  while ((at = t.find("# TYPE snapd_port_dropped_frames_total ", at)) != std::string::npos) {
    ++types;
    ++at;
  }
  EXPECT_EQ(types, 1);
}

// Prometheus's own checker (promtool, Debian's prometheus package) reads the text: the format
// parses, and names and types follow its conventions (promtool warns of those too).
TEST(MetricsTest, PromtoolTakesIt) {
  v1::DaemonInfo info;
  info.set_version("0.9");
  info.set_build("snapd@abc");
  SomeBlackouts(&info);
  const std::string text = PrometheusText(SomeStats(), info);
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/metrics.txt";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
  FILE* p = popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << "promtool (tools/setup installs it): " << out;
  EXPECT_EQ(out, "") << "promtool's warnings";
}

TEST(MetricsTest, BlackoutsAreAHistogramInSeconds) {
  v1::DaemonInfo info;
  SomeBlackouts(&info);
  const std::string t = PrometheusText(v1::Stats(), info);
  EXPECT_TRUE(Has(t, "# TYPE snapd_upgrade_blackout_seconds histogram")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrade_blackout_seconds_bucket{le=\"5e-05\"} 1")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrade_blackout_seconds_bucket{le=\"0.25\"} 3")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrade_blackout_seconds_bucket{le=\"+Inf\"} 4")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrade_blackout_seconds_sum 1.5")) << t;
  EXPECT_TRUE(Has(t, "snapd_upgrade_blackout_seconds_count 4")) << t;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(PrometheusLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace snapd
