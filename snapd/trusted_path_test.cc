#include "snapd/trusted_path.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

using ::testing::HasSubstr;

constexpr uid_t kSelf = 4242;  // snapd's euid in the pure cases
constexpr uid_t kOther = 1000;

struct stat Stat(uid_t uid, mode_t mode) {
  struct stat st {};
  st.st_uid = uid;
  st.st_mode = mode;
  return st;
}

TEST(WhyNotTrusted, Table) {
  struct Case {
    uid_t uid;
    mode_t mode;
    std::string why;  // empty: trusted
  } cases[] = {
      {0, S_IFDIR | 0755, ""},
      {kSelf, S_IFDIR | 0700, ""},
      {0, S_IFREG | 0555, ""},
      {kSelf, S_IFREG | 04755, ""},  // setuid is not writability
      {kOther, S_IFDIR | 0755, "directory /d is owned by uid 1000"},
      {kOther, S_IFDIR | 0777, "directory /d is owned by uid 1000"},  // the owner first
      {0, S_IFDIR | 0775, "directory /d is writable by group"},
      {0, S_IFDIR | 0757, "directory /d is writable by others"},
      {0, S_IFDIR | 01777, "directory /d is writable by group and others"},  // /tmp: sticky
      {0, S_IFDIR | 01757, "directory /d is writable by others"},
      {kSelf, S_IFDIR | 0770, "directory /d is writable by group"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(WhyNotTrusted(Stat(c.uid, c.mode), "directory", "/d", kSelf), c.why)
        << "uid " << c.uid << " mode " << std::oct << c.mode;
  }
}

TEST(CheckNewSnapdArgs, Allowlist) {
  struct Case {
    std::vector<std::string> args;
    std::string refused;  // empty: allowed; else a substring of the refusal
  } cases[] = {
      {{}, ""},
      {{"--takeover_fault=half"}, ""},
      {{"--takeover_version=99", "--takeover_defer_nics"}, ""},
      {{"--takeover_defer_nics=false"}, ""},
      {{"--takeover_fault"}, "--takeover_fault is not a flag"},  // needs a value
      {{"--run_dir=/home/u/run"}, "--run_dir is not a flag"},
      {{"--takeover_fd=7"}, "--takeover_fd is not a flag"},
      {{"--config=/etc/shadow"}, "--config is not a flag"},
      {{"--takeover_fault=half", "--nic=net_pcap0,rx_pcap=/x"}, "--nic is not a flag"},
      {{"-takeover_fault=half"}, "'-takeover_fault=half' is not a --flag"},
      {{"positional"}, "'positional' is not a --flag"},
      {{"--flagfile=/tmp/f"}, "--flagfile is not a flag"},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckNewSnapdArgs(c.args);
    if (c.refused.empty()) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << c.refused;
      EXPECT_THAT(std::string(s.message()), HasSubstr(c.refused));
    }
  }
}

// Files and directories made under the test's temporary directory, whose own ancestors must be
// trusted for the cases to mean anything (under Bazel they are: its output tree is closed).
class TrustedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string base = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/trusted.XXXXXX");
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    char* real = realpath(base.c_str(), nullptr);
    root_ = real;
    free(real);
    chmod(root_.c_str(), 0755);
    Write("probe/bin", kElf, 0755);
    auto probe = OpenTrustedExecutable(root_ + "/probe/bin", geteuid());
    if (!probe.ok())
      GTEST_SKIP() << "the test's temporary directory is not trusted: " << probe.status();
  }
  void TearDown() override { system(absl::StrCat("rm -rf '", root_, "'").c_str()); }

  // Makes root_/rel (its directories 0755) with `content` and `mode`.
  std::string Write(const std::string& rel, const std::string& content, mode_t mode) {
    std::string path = root_ + "/" + rel;
    for (size_t i = root_.size() + 1; i < path.size(); ++i) {
      if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
    }
    std::ofstream(path) << content;
    chmod(path.c_str(), mode);
    return path;
  }
  std::string Dir(const std::string& rel, mode_t mode) {
    std::string path = root_ + "/" + rel;
    mkdir(path.c_str(), mode);
    chmod(path.c_str(), mode);
    return path;
  }

  static constexpr char kElf[] =
      "\x7f"
      "ELF not really";
  std::string root_;
};

TEST_F(TrustedFilesTest, Executables) {
  const uid_t self = geteuid();
  Write("ok/snapd", kElf, 0755);
  symlink((root_ + "/ok/snapd").c_str(), (root_ + "/link").c_str());
  Write("gw/snapd", kElf, 0775);
  Write("ow/snapd", kElf, 0757);
  Dir("gwdir", 0775);
  Write("gwdir/snapd", kElf, 0755);
  Dir("sticky", 01777);
  Write("sticky/snapd", kElf, 0755);
  Write("noexec/snapd", kElf, 0644);
  Write("text/snapd", "just text\n", 0755);
  Write("script/ok", "#!/bin/sh\nexit 0\n", 0755);
  Write("script/spaced", "#!  /bin/sh -e\nexit 0\n", 0755);
  Write("script/relative", "#!sh\n", 0755);
  Write("script/bad_interp", absl::StrCat("#!", root_, "/gw/snapd\n"), 0755);
  Write("script/nested", absl::StrCat("#!", root_, "/script/ok\n"), 0755);
  mkfifo((root_ + "/fifo").c_str(), 0755);
  struct Case {
    std::string rel;
    absl::StatusCode code;
    std::string why;  // a substring of the message, with ROOT for root_
    bool script = false;
  } cases[] = {
      {"ok/snapd", absl::StatusCode::kOk, ""},
      {"link", absl::StatusCode::kOk, ""},  // resolved: the target is what is checked
      {"gw/snapd", absl::StatusCode::kPermissionDenied,
       "binary ROOT/gw/snapd is writable by group"},
      {"ow/snapd", absl::StatusCode::kPermissionDenied,
       "binary ROOT/ow/snapd is writable by others"},
      {"gwdir/snapd", absl::StatusCode::kPermissionDenied,
       "directory ROOT/gwdir is writable by group"},
      {"sticky/snapd", absl::StatusCode::kPermissionDenied,
       "directory ROOT/sticky is writable by group and others"},
      {"noexec/snapd", absl::StatusCode::kFailedPrecondition, "is not executable (mode 0644)"},
      {"text/snapd", absl::StatusCode::kFailedPrecondition, "neither an ELF executable nor"},
      {"ok", absl::StatusCode::kFailedPrecondition, "binary ROOT/ok is not a regular file"},
      {"fifo", absl::StatusCode::kFailedPrecondition, "is not a regular file"},
      {"missing", absl::StatusCode::kInvalidArgument, "cannot resolve"},
      {"script/ok", absl::StatusCode::kOk, "", true},
      {"script/spaced", absl::StatusCode::kOk, "", true},
      {"script/relative", absl::StatusCode::kFailedPrecondition, "without an absolute interpreter"},
      {"script/bad_interp", absl::StatusCode::kPermissionDenied,
       "the interpreter of ROOT/script/bad_interp ROOT/gw/snapd is writable by group"},
      {"script/nested", absl::StatusCode::kFailedPrecondition, "is not an ELF executable"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TrustedExecutable> exe = OpenTrustedExecutable(root_ + "/" + c.rel, self);
    EXPECT_EQ(exe.status().code(), c.code) << c.rel << ": " << exe.status();
    if (exe.ok()) {
      EXPECT_TRUE(exe->fd);
      EXPECT_EQ(exe->script, c.script) << c.rel;
      EXPECT_EQ(fcntl(exe->fd.get(), F_GETFD), FD_CLOEXEC) << c.rel;
      if (c.rel == "link") EXPECT_EQ(exe->path, root_ + "/ok/snapd");
    } else {
      std::string why = c.why;
      for (size_t at; (at = why.find("ROOT")) != std::string::npos;) why.replace(at, 4, root_);
      EXPECT_THAT(std::string(exe.status().message()), HasSubstr(why)) << c.rel;
    }
  }
}

TEST_F(TrustedFilesTest, OwnedBySomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  Write("theirs/snapd", kElf, 0755);
  ASSERT_EQ(chown((root_ + "/theirs").c_str(), kOther, kOther), 0);
  Write("file/snapd", kElf, 0755);
  ASSERT_EQ(chown((root_ + "/file/snapd").c_str(), kOther, kOther), 0);
  auto dir = OpenTrustedExecutable(root_ + "/theirs/snapd", 0);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(dir.status().message(),
            absl::StrCat("directory ", root_, "/theirs is owned by uid 1000"));
  auto file = OpenTrustedExecutable(root_ + "/file/snapd", 0);
  EXPECT_EQ(file.status().message(),
            absl::StrCat("binary ", root_, "/file/snapd is owned by uid 1000"));
  // Trusted when they are snapd's own (snapd running as uid 1000).
  EXPECT_EQ(OpenTrustedExecutable(root_ + "/file/snapd", kOther).status().code(),
            absl::StatusCode::kOk);
}

TEST_F(TrustedFilesTest, RunDir) {
  const uid_t self = geteuid();
  mode_t mask = umask(022);
  // Made, with its parents, 0755.
  std::string fresh = root_ + "/run/a/snapd";
  ASSERT_TRUE(PrepareRunDir(fresh, self).ok());
  struct stat st;
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755);
  EXPECT_TRUE(PrepareRunDir(fresh, self).ok()) << "an existing one of ours is fine";
  // Ours but open to others: tightened.
  std::string loose = Dir("loose", 0777);
  EXPECT_TRUE(PrepareRunDir(loose, self).ok());
  ASSERT_EQ(stat(loose.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755);
  std::string sticky = Dir("sticky", 01770);
  EXPECT_TRUE(PrepareRunDir(sticky, self).ok());
  ASSERT_EQ(stat(sticky.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01750);
  // A symlink to a directory of ours is still refused: it can be pointed elsewhere.
  symlink(fresh.c_str(), (root_ + "/link").c_str());
  absl::Status link = PrepareRunDir(root_ + "/link", self);
  EXPECT_EQ(link.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(link.message()), HasSubstr("is a symlink"));
  Write("file", "x", 0644);
  EXPECT_EQ(PrepareRunDir(root_ + "/file", self).code(), absl::StatusCode::kFailedPrecondition);
  // Someone else's.
  absl::Status theirs = PrepareRunDir(fresh, self + 1);
  EXPECT_EQ(theirs.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(theirs.message()),
              HasSubstr(absl::StrCat("run dir ", fresh, " is owned by uid ", self)));
  umask(mask);
}

}  // namespace
}  // namespace snapd
