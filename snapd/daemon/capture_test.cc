// Captures without a daemon: the filter (libpcap's compiler, DPDK's rte_bpf), the rings (bounded,
// drops counted and written as epb_dropcount), the count, and the pcapng as tshark (Debian's,
// a reader no one here wrote) reads it: interfaces by name, directions, lengths, drops.
#include "snapd/daemon/capture.h"

#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

// Ethernet, IPv4, UDP from port 1000 to `dport`, `payload` bytes of 'x'.
std::string Udp(uint16_t dport, size_t payload = 18, uint8_t proto = 17) {
  std::string f(14 + 20 + 8 + payload, 'x');
  auto* b = reinterpret_cast<uint8_t*>(f.data());
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00};
  memcpy(b, eth, 14);
  uint8_t* ip = b + 14;
  memset(ip, 0, 20);
  ip[0] = 0x45;
  const uint16_t total = static_cast<uint16_t>(20 + 8 + payload);
  ip[2] = total >> 8;
  ip[3] = total & 0xff;
  ip[8] = 64;
  ip[9] = proto;
  const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
  memcpy(ip + 12, addrs, 8);
  uint8_t* udp = ip + 20;
  udp[0] = 1000 >> 8;
  udp[1] = 1000 & 0xff;
  udp[2] = dport >> 8;
  udp[3] = dport & 0xff;
  udp[4] = (8 + payload) >> 8;
  udp[5] = (8 + payload) & 0xff;
  udp[6] = udp[7] = 0;
  return f;
}

Packet View(std::string& f) {
  return Packet{reinterpret_cast<uint8_t*>(f.data()), static_cast<uint32_t>(f.size())};
}

TEST(CaptureFilterTest, ATcpdumpExpressionSelectsFrames) {
  auto f = CaptureFilter::Compile("udp dst port 53");
  ASSERT_TRUE(f.ok()) << f.status();
  alignas(64) unsigned char scratch[CaptureFilter::kScratchBytes] = {};
  std::string dns = Udp(53), other = Udp(54), tcp = Udp(53, 18, 6);
  EXPECT_TRUE((*f)->Matches(scratch, View(dns).data, View(dns).len));
  EXPECT_FALSE((*f)->Matches(scratch, View(other).data, View(other).len));
  EXPECT_FALSE((*f)->Matches(scratch, View(tcp).data, View(tcp).len));
  printf("rte_bpf JIT: %s\n", (*f)->jit() ? "yes" : "no (interpreted)");
}

TEST(CaptureFilterTest, AnExpressionLibpcapCannotCompileIsRefusedWithItsWords) {
  auto f = CaptureFilter::Compile("udp port banana");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("banana"), std::string::npos) << f.status();
}

// What a live upgrade carries: the program, loaded again as it was; anything else is refused.
TEST(CaptureFilterTest, AProgramCarriedByAnUpgradeLoadsAsItWasAndGarbageIsRefused) {
  auto f = CaptureFilter::Compile("udp dst port 53");
  ASSERT_TRUE(f.ok()) << f.status();
  auto again = CaptureFilter::FromProgram("udp dst port 53", (*f)->program());
  ASSERT_TRUE(again.ok()) << again.status();
  alignas(64) unsigned char scratch[CaptureFilter::kScratchBytes] = {};
  std::string dns = Udp(53), other = Udp(54);
  EXPECT_TRUE((*again)->Matches(scratch, View(dns).data, View(dns).len));
  EXPECT_FALSE((*again)->Matches(scratch, View(other).data, View(other).len));
  // Not a whole number of instructions; none; a jump out of the program (bpf_validate).
  EXPECT_FALSE(CaptureFilter::FromProgram("x", (*f)->program().substr(1)).ok());
  EXPECT_FALSE(CaptureFilter::FromProgram("x", "").ok());
  std::string jump_out = (*f)->program();
  jump_out[0] = 0x05;  // BPF_JMP | BPF_JA ...
  jump_out[1] = 0;
  jump_out[4] = 0x7f;  // ... far past the end
  EXPECT_FALSE(CaptureFilter::FromProgram("x", jump_out).ok());
  EXPECT_FALSE(CaptureFilter::FromProgram("x", std::string(8 * 5000, '\0')).ok());
}

// A capture taken up after an upgrade: the old snapd's figures add to this one's, and figures
// that do not add up are refused with nothing changed.
TEST(CaptureTest, AResumedCaptureCountsOnFromTheOldSnapdsFigures) {
  CaptureSpec spec;
  spec.ports = {"app1", "app2"};
  spec.count = 10;
  auto c = Capture::Create(spec);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->Resume(7, {{10, 10, 0, 7}}).ok());                // one port of two
  EXPECT_FALSE((*c)->Resume(8, {{10, 10, 0, 7}, {0, 0, 0, 0}}).ok());  // 8 written, not 7
  EXPECT_FALSE((*c)->Resume(7, {{5, 10, 0, 7}, {0, 0, 0, 0}}).ok());   // more accepted than seen
  EXPECT_FALSE(
      (*c)->Resume(7, {{10, 9, 3, 7}, {0, 0, 0, 0}}).ok());  // written + dropped > accepted
  EXPECT_EQ((*c)->written(), 0u);
  ASSERT_TRUE((*c)->Resume(7, {{12, 10, 1, 7}, {0, 0, 0, 0}}).ok());
  EXPECT_EQ((*c)->written(), 7u);
  std::string f = Udp(9);
  Packet p = View(f);
  for (int i = 0; i < 5; ++i) (*c)->ports()[1]->Frames(&p, 1, false);
  std::string out;
  EXPECT_EQ((*c)->Drain(&out, 1 << 20), 3u);  // the count is of both snapds' frames
  EXPECT_TRUE((*c)->done());
  const std::vector<PortTotals> t = (*c)->Totals();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].seen, 12u);
  EXPECT_EQ(t[0].written, 7u);
  EXPECT_EQ(t[1].written, 3u);
  EXPECT_EQ((*c)->dropped(), 1u);
}

TEST(CaptureTest, DirectionFilterAndCountDecideWhatIsWritten) {
  CaptureSpec spec;
  spec.ports = {"app1"};
  spec.rx = true;
  spec.tx = false;
  spec.count = 3;
  spec.filter = "udp";
  auto c = Capture::Create(spec);
  ASSERT_TRUE(c.ok()) << c.status();
  PortCapture& p = *(*c)->ports()[0];
  std::string a = Udp(1), b = Udp(2, 10, 6), d = Udp(3);
  Packet burst[3] = {View(a), View(b), View(d)};
  p.Frames(burst, 3, /*sent=*/true);  // tx: not asked for
  EXPECT_EQ(p.seen(), 0u);
  p.Frames(burst, 3, false);  // two pass the filter
  p.Frames(burst, 3, false);  // one more fits the count
  EXPECT_EQ(p.seen(), 6u);
  EXPECT_EQ(p.accepted(), 4u);
  std::string out;
  EXPECT_EQ((*c)->Drain(&out, 1 << 20), 3u);
  EXPECT_TRUE((*c)->done());
  EXPECT_EQ((*c)->dropped(), 0u);
}

TEST(CaptureTest, AFullRingDropsAndCountsAndTheNextFrameSaysHowMany) {
  CaptureSpec spec;
  spec.ports = {"app1"};
  spec.ring_bytes = 4096;  // the smallest: about 40 frames of 64 bytes
  auto c = Capture::Create(spec);
  ASSERT_TRUE(c.ok());
  PortCapture& p = *(*c)->ports()[0];
  std::string f = Udp(7);
  std::vector<Packet> burst(32, View(f));
  for (int i = 0; i < 10; ++i) p.Frames(burst.data(), 32, false);
  EXPECT_GT(p.dropped(), 0u);
  std::string out;
  const size_t first = (*c)->Drain(&out, 1 << 20);
  EXPECT_EQ(first + p.dropped(), 320u) << "every frame written or counted";
  p.Frames(burst.data(), 1, false);
  std::string more;
  EXPECT_EQ((*c)->Drain(&more, 1 << 20), 1u);
  // epb_dropcount (option 4, 8 bytes): the drops before this frame.
  const uint64_t drops = p.dropped();
  EXPECT_NE(more.find(std::string("\x04\x00\x08\x00", 4) +
                      std::string(reinterpret_cast<const char*>(&drops), 8)),
            std::string::npos);
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// What tshark makes of it: each frame on its interface, by name, with its direction and length;
// the statistics block with the drops.
TEST(CaptureTest, TsharkReadsInterfacesDirectionsLengthsAndDrops) {
  CaptureSpec spec;
  spec.ports = {"app1", "nic0/q0"};
  spec.snaplen = 40;
  auto c = Capture::Create(spec);
  ASSERT_TRUE(c.ok());
  std::string big = Udp(9, 100), small = Udp(10);
  Packet one = View(big), two = View(small);
  const double before = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  (*c)->ports()[0]->Frames(&one, 1, false);
  absl::SleepFor(absl::Milliseconds(30));  // past the first 10 ms: the TSC's rate is measured
  (*c)->ports()[1]->Frames(&two, 1, true);
  const double after = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  std::string file = (*c)->Header({"app port app1", "queue of NIC nic0"});
  (*c)->Drain(&file, 1 << 20);
  file += (*c)->Trailer(1, 2, "snapd capture");
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/c.pcapng";
  std::ofstream(path, std::ios::binary) << file;
  const std::string fields =
      Shell("tshark -r " + path +
            " -T fields -e frame.interface_name -e frame.packet_flags_direction -e frame.len "
            "-e frame.cap_len 2>/dev/null");
  EXPECT_EQ(fields, "app1\t0x00000001\t142\t40\nnic0/q0\t0x00000002\t60\t40\n") << fields;
  // Each frame stamped with the Unix time it passed (the tap reads the TSC; Drain converts).
  std::istringstream times(Shell("tshark -r " + path + " -T fields -e frame.time_epoch"));
  double first = 0, second = 0;
  times >> first >> second;
  EXPECT_GE(first, before - 0.001);
  EXPECT_LE(second, after + 0.001);
  EXPECT_GE(second - first, 0.029) << first << " " << second;
  const std::string info = Shell("capinfos -I " + path + " 2>/dev/null");
  EXPECT_NE(info.find("app1"), std::string::npos) << info;
  EXPECT_NE(info.find("nic0/q0"), std::string::npos) << info;
  EXPECT_NE(info.find("Number of stat entries = 1"), std::string::npos) << info;
}

// A reader that fell behind: tshark finds the drops on the frames after them, and they add up to
// what the capture counted.
TEST(CaptureTest, TsharkFindsTheDropsWhereTheyHappened) {
  CaptureSpec spec;
  spec.ports = {"app1"};
  spec.ring_bytes = 4096;
  auto c = Capture::Create(spec);
  ASSERT_TRUE(c.ok());
  PortCapture& p = *(*c)->ports()[0];
  std::string f = Udp(11);
  std::vector<Packet> burst(100, View(f));
  std::string file = (*c)->Header({"app port app1"});
  p.Frames(burst.data(), 100, false);
  (*c)->Drain(&file, 1 << 20);
  p.Frames(burst.data(), 1, false);  // the first frame after the drops
  (*c)->Drain(&file, 1 << 20);
  ASSERT_GT(p.dropped(), 0u);
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/drops.pcapng";
  std::ofstream(path, std::ios::binary) << file;
  const std::string drops =
      Shell("tshark -r " + path + " -T fields -e frame.drop_count 2>/dev/null | grep . | sort -u");
  EXPECT_EQ(drops, std::to_string(p.dropped()) + "\n") << drops;
}

}  // namespace
}  // namespace snapd

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // rte_bpf's programs live in the EAL's memory.
  std::vector<std::string> args = {"capture_test",
                                   "--no-huge",
                                   "-m",
                                   "64",
                                   "--no-shconf",
                                   "--no-pci",
                                   "--no-telemetry",
                                   "--log-level=lib.eal:error"};
  std::vector<char*> v;
  for (std::string& a : args) v.push_back(a.data());
  if (rte_eal_init(static_cast<int>(v.size()), v.data()) < 0) {
    fprintf(stderr, "EAL failed to start\n");
    return 1;
  }
  return RUN_ALL_TESTS();
}
