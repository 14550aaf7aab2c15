#include "control/authority.h"

#include <grp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace snapd {
namespace {

constexpr uid_t kSelf = 4242;  // snapd's euid
constexpr gid_t kControl = 500;

PeerCredentials Peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  PeerCredentials p;
  p.uid = uid;
  p.gid = gid;
  p.groups = std::move(groups);
  return p;
}

TEST(Classify, Table) {
  struct Case {
    PeerCredentials peer;
    gid_t group;
    Tier tier;
  } cases[] = {
      {Peer(0, 0), kControl, Tier::kAdmin},
      {Peer(0, 0), static_cast<gid_t>(-1), Tier::kAdmin},
      {Peer(kSelf, 100), kControl, Tier::kAdmin},
      {Peer(kSelf, 100), static_cast<gid_t>(-1), Tier::kAdmin},
      {Peer(1001, kControl), kControl, Tier::kOperator},            // primary group
      {Peer(1001, 100, {7, kControl}), kControl, Tier::kOperator},  // supplementary
      {Peer(1001, 100, {7, 8}), kControl, Tier::kDenied},
      {Peer(1001, kControl), static_cast<gid_t>(-1), Tier::kDenied},  // no control group
      {Peer(1001, 0, {0}), kControl, Tier::kDenied},                  // root's group is not root
      // Credentials that could not be read are denied whatever the group says.
      {PeerCredentials{}, kControl, Tier::kDenied},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Classify(c.peer, kSelf, c.group), c.tier)
        << "uid " << c.peer.uid << " gid " << c.peer.gid << " -> " << TierName(c.tier);
  }
}

TEST(PeerCredentialsOf, OwnProcess) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto peer = PeerCredentialsOf(sv[0]);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->pid, getpid());
  EXPECT_EQ(peer->uid, geteuid());
  EXPECT_EQ(peer->gid, getegid());
  std::vector<gid_t> mine(getgroups(0, nullptr));
  getgroups(static_cast<int>(mine.size()), mine.data());
  std::vector<gid_t> got = peer->groups;
  std::sort(mine.begin(), mine.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, mine);
  close(sv[0]);
  close(sv[1]);
}

// More supplementary groups than the first guess holds: the ERANGE retry. The groups are the
// connecting process's at connect(), read after it changed them again and exited.
TEST(PeerCredentialsOf, ManyGroupsOfAnExitedPeer) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for setgroups";
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "snapd-authority-test-" + std::to_string(getpid());
  memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract
  socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  pid_t child = fork();
  if (child == 0) {
    std::vector<gid_t> groups;
    for (gid_t g = 60000; g < 60100; ++g) groups.push_back(g);
    if (setgroups(groups.size(), groups.data()) != 0) _exit(1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(2);
    setgroups(0, nullptr);  // too late: the kernel recorded them at connect
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  int fd = accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  auto peer = PeerCredentialsOf(fd);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->pid, child);
  ASSERT_EQ(peer->groups.size(), 100u);
  EXPECT_EQ(Classify(Peer(1001, 100, peer->groups), kSelf, 60099), Tier::kOperator);
  close(fd);
  close(listener);
}

}  // namespace
}  // namespace snapd
