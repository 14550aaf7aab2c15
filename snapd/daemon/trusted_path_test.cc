#include "snapd/daemon/trusted_path.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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

TEST(WhyNotTrustedFileSystem, Table) {
  struct Case {
    long type;
    unsigned long flags;
    std::string why;  // a substring; empty: trusted
  } cases[] = {
      {0xEF53, 0, ""},              // ext4
      {0x01021994, ST_NOEXEC, ""},  // tmpfs, noexec (refused elsewhere, as not executable)
      {0xEF53, ST_NOSUID, "/x is on a file system mounted nosuid, as every mount a user can make"},
      {0x65735546, 0, "/x is on a FUSE file system: its server, not the kernel, says who owns it"},
      {static_cast<long>(0xFFFFFFFF65735546), 0, "FUSE"},  // a sign-extended f_type
      {0x6969, 0, "on an NFS file system"},
      {0x517B, 0, "on an SMB file system"},
      {static_cast<long>(0xFF534D42), 0, "on a CIFS file system"},
      {static_cast<long>(0xFE534D42), 0, "on an SMB2 file system"},
      {0x00c36400, 0, "on a Ceph file system"},
      {0x01021997, 0, "on a 9p file system"},
  };
  for (const Case& c : cases) {
    std::string why = WhyNotTrustedFileSystem(c.type, c.flags, "binary", "/x");
    if (c.why.empty()) {
      EXPECT_EQ(why, "") << std::hex << c.type;
    } else {
      EXPECT_THAT(why, HasSubstr(c.why)) << std::hex << c.type;
    }
  }
}

TEST(ParseShebang, Table) {
  struct Case {
    std::string head;
    std::string interpreter;  // empty: refused
    std::string option;
    std::string why;  // a substring of the refusal
  } cases[] = {
      {"#!/bin/sh\nexit 0\n", "/bin/sh", "", ""},
      {"#!  /bin/sh -e  \n", "/bin/sh", "-e", ""},
      {"#!\t/usr/bin/python3\t-I\n", "/usr/bin/python3", "-I", ""},
      {"#!/bin/bash --norc\n", "/bin/bash", "--norc", ""},
      {"#!/usr/bin/env sh\n", "", "", "#!/usr/bin/env looks the program up in PATH"},
      {"#!/usr/bin/env -S sh -e\n", "", "", "looks the program up in PATH"},
      {"#!/bin/env\n", "", "", "looks the program up in PATH"},
      {"#!/bin/sh /home/u/x\n", "", "",
       "passes '/home/u/x' to /bin/sh: only one option, starting with '-'"},
      {"#!/bin/sh -e /home/u/x\n", "", "", "passes '-e /home/u/x' to /bin/sh"},
      {"#!/bin/sh -e -x\n", "", "", "passes '-e -x'"},
      {"#!sh\n", "", "", "its interpreter 'sh' is not an absolute path"},
      {"#!\n", "", "", "names no interpreter"},
      {"#!   \n", "", "", "names no interpreter"},
      {"#!/bin/sh", "", "", "does not end within its first 256 bytes"},
      {std::string("#!/bin/sh\0/x\n", 13), "", "", "its #! line holds a NUL byte"},
      {"echo\n", "", "", "does not start with #!"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Shebang> s = ParseShebang(c.head, "/s");
    if (c.interpreter.empty()) {
      EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << c.head;
      EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.why)) << c.head;
      EXPECT_TRUE(absl::StartsWith(s.status().message(), "script /s: ")) << s.status();
    } else {
      ASSERT_TRUE(s.ok()) << c.head << ": " << s.status();
      EXPECT_EQ(s->interpreter, c.interpreter);
      EXPECT_EQ(s->option, c.option);
    }
  }
}

TEST(ExecArgv, BinaryAndScript) {
  TrustedExecutable elf;
  EXPECT_EQ(
      ExecArgv(elf, "/usr/sbin/snapd", 4, {"--takeover_fd=3", "--upgrade_defer_nics"}),
      (std::vector<std::string>{"/usr/sbin/snapd", "--takeover_fd=3", "--upgrade_defer_nics"}));
  TrustedExecutable script;
  script.interpreter = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  script.shebang = {"/bin/sh", ""};
  EXPECT_EQ(ExecArgv(script, "/x/gate", 4, {"--takeover_fd=3"}),
            (std::vector<std::string>{"/bin/sh", "/dev/fd/4", "--takeover_fd=3"}));
  script.shebang.option = "-e";
  EXPECT_EQ(ExecArgv(script, "/x/gate", 7, {"--takeover_fd=3"}),
            (std::vector<std::string>{"/bin/sh", "-e", "/dev/fd/7", "--takeover_fd=3"}));
}

TEST(CheckNewSnapdArgs, Allowlist) {
  struct Case {
    std::vector<std::string> args;
    std::string refused;  // empty: allowed; else a substring of the refusal
  } cases[] = {
      {{}, ""},
      {{"--upgrade_fault=half"}, ""},
      {{"--upgrade_version=99", "--upgrade_defer_nics"}, ""},
      {{"--upgrade_defer_nics=false"}, ""},
      {{"--upgrade_fault"}, "--upgrade_fault is not a flag"},  // needs a value
      {{"--run_dir=/home/u/run"}, "--run_dir is not a flag"},
      {{"--takeover_fd=7"}, "--takeover_fd is not a flag"},
      {{"--config=/etc/shadow"}, "--config is not a flag"},
      {{"--upgrade_fault=half", "--nic=net_pcap0,rx_pcap=/x"}, "--nic is not a flag"},
      {{"-upgrade_fault=half"}, "'-upgrade_fault=half' is not a --flag"},
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

// An ELF header (64-bit, x86-64) with no program header, or with one PT_INTERP naming `loader`:
// enough for the checks, which read no further.
std::string Elf(const std::string& loader = "") {
  Elf64_Ehdr eh{};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_ehsize = sizeof(eh);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  std::string out;
  if (loader.empty()) return std::string(reinterpret_cast<char*>(&eh), sizeof(eh));
  eh.e_phoff = sizeof(eh);
  eh.e_phnum = 1;
  Elf64_Phdr ph{};
  ph.p_type = PT_INTERP;
  ph.p_offset = sizeof(eh) + sizeof(ph);
  ph.p_filesz = loader.size() + 1;
  out.append(reinterpret_cast<char*>(&eh), sizeof(eh));
  out.append(reinterpret_cast<char*>(&ph), sizeof(ph));
  out.append(loader.c_str(), loader.size() + 1);
  return out;
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
    Write("probe/bin", Elf(), 0755);
    auto probe = OpenTrustedExecutable(root_ + "/probe/bin", geteuid());
    if (!probe.ok())
      GTEST_SKIP() << "the test's temporary directory is not trusted: " << probe.status();
  }
  void TearDown() override {
    if (!mounted_.empty()) umount2(mounted_.c_str(), MNT_DETACH);
    system(absl::StrCat("rm -rf '", root_, "'").c_str());
  }

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
  void Link(const std::string& target, const std::string& rel) {
    ASSERT_EQ(symlink(target.c_str(), (root_ + "/" + rel).c_str()), 0) << rel;
  }

  std::string root_;
  std::string mounted_;  // a mount to undo
};

struct FileCase {
  std::string rel;  // under root, or "rel:" and a relative path
  absl::StatusCode code;
  std::string why;        // a substring of the message, with ROOT for root_
  std::string path = "";  // where the file checked is, if not at rel (ROOT for root_)
};

void ExpectCases(const std::string& root, const std::vector<FileCase>& cases) {
  auto rooted = [&root](std::string s) {
    for (size_t at; (at = s.find("ROOT")) != std::string::npos;) s.replace(at, 4, root);
    return s;
  };
  for (const FileCase& c : cases) {
    // "rel:x" is the path x as given (relative), anything else is under root.
    absl::string_view given = c.rel;
    const std::string path =
        absl::ConsumePrefix(&given, "rel:") ? std::string(given) : root + "/" + c.rel;
    absl::StatusOr<TrustedExecutable> exe = OpenTrustedExecutable(path, geteuid());
    EXPECT_EQ(exe.status().code(), c.code) << c.rel << ": " << exe.status();
    if (exe.ok()) {
      EXPECT_TRUE(exe->fd);
      EXPECT_EQ(fcntl(exe->fd.get(), F_GETFD), FD_CLOEXEC) << c.rel;
      EXPECT_EQ(exe->path, rooted(c.path.empty() ? "ROOT/" + c.rel : c.path)) << c.rel;
      if (exe->is_script()) {
        EXPECT_EQ(fcntl(exe->interpreter.get(), F_GETFD), FD_CLOEXEC);
      }
    } else {
      EXPECT_THAT(std::string(exe.status().message()), HasSubstr(rooted(c.why))) << c.rel;
    }
  }
}

TEST_F(TrustedFilesTest, Executables) {
  using C = absl::StatusCode;
  Write("ok/snapd", Elf(), 0755);
  Write("gw/snapd", Elf(), 0775);
  Write("ow/snapd", Elf(), 0757);
  Dir("gwdir", 0775);
  Write("gwdir/snapd", Elf(), 0755);
  Dir("sticky", 01777);
  Write("sticky/snapd", Elf(), 0755);
  Write("noexec/snapd", Elf(), 0644);
  Write("text/snapd", "just text\n", 0755);
  Write("cut/snapd",
        "\x7f"
        "ELF\x02\x01",
        0755);
  Write("class/snapd",
        std::string("\x7f"
                    "ELF\x07\x01\x01\0\0\0\0\0\0\0\0\0",
                    16) +
            Elf().substr(16),
        0755);
  mkfifo((root_ + "/fifo").c_str(), 0755);
  ExpectCases(
      root_,
      {
          {"ok/snapd", C::kOk, ""},
          {"gw/snapd", C::kPermissionDenied, "binary ROOT/gw/snapd is writable by group"},
          {"ow/snapd", C::kPermissionDenied, "binary ROOT/ow/snapd is writable by others"},
          {"gwdir/snapd", C::kPermissionDenied, "directory ROOT/gwdir is writable by group"},
          {"sticky/snapd", C::kPermissionDenied,
           "directory ROOT/sticky is writable by group and others"},
          {"noexec/snapd", C::kFailedPrecondition, "is not executable (mode 0644)"},
          {"text/snapd", C::kFailedPrecondition, "neither an ELF executable nor"},
          {"cut/snapd", C::kFailedPrecondition,
           "binary ROOT/cut/snapd is not an ELF file this machine can run: its ELF header is cut "
           "short"},
          {"class/snapd", C::kFailedPrecondition, "is of an unknown ELF class"},
          {"ok", C::kFailedPrecondition, "binary ROOT/ok is not a regular file"},
          {"fifo", C::kFailedPrecondition, "is not a regular file"},
          {"missing", C::kInvalidArgument, "cannot open ROOT/missing: No such file or directory"},
          {"ok/snapd/x", C::kFailedPrecondition, "ROOT/ok/snapd is not a directory"},
          {"rel:ok/snapd", C::kInvalidArgument, "binary path 'ok/snapd' is not absolute"},
      });
}

// The path is walked as given, and a symlink followed only where only root and snapd's user could
// have put it: one in a directory others can write to could be swapped between the check and the
// exec (the realpath-then-check gap).
TEST_F(TrustedFilesTest, Symlinks) {
  using C = absl::StatusCode;
  Write("ok/snapd", Elf(), 0755);
  Link(root_ + "/ok/snapd", "abs");
  Link("ok/snapd", "rel");
  Link("ok", "dirlink");
  Dir("sub", 0755);
  Link("../ok/snapd", "sub/up");
  Link("./../sub/up", "sub/chain");
  Link("loop2", "loop1");
  Link("loop1", "loop2");
  Dir("gwlinks", 0775);
  Link(root_ + "/ok/snapd", "gwlinks/snapd");
  Link(root_ + "/gwlinks", "to_gw");
  Link(root_ + "/gwlinks/snapd", "via_gw");
  Link(root_ + "/gw", "to_gw_dir");
  Dir("gw", 0775);
  ExpectCases(
      root_,
      {
          {"abs", C::kOk, "", "ROOT/ok/snapd"},
          {"rel", C::kOk, "", "ROOT/ok/snapd"},
          {"dirlink/snapd", C::kOk, "", "ROOT/ok/snapd"},
          {"sub/up", C::kOk, "", "ROOT/ok/snapd"},
          {"sub/chain", C::kOk, "", "ROOT/ok/snapd"},
          {"sub/../ok/./snapd", C::kOk, "", "ROOT/ok/snapd"},
          {"loop1", C::kInvalidArgument, "too many symlinks"},
          // The link is ours, but the directory holding it is not closed.
          {"gwlinks/snapd", C::kPermissionDenied, "directory ROOT/gwlinks is writable by group"},
          {"to_gw/snapd", C::kPermissionDenied, "directory ROOT/gwlinks is writable by group"},
          {"via_gw", C::kPermissionDenied, "directory ROOT/gwlinks is writable by group"},
      });
}

TEST_F(TrustedFilesTest, Scripts) {
  using C = absl::StatusCode;
  Write("ok/snapd", Elf(), 0755);
  Write("gw/snapd", Elf(), 0775);
  Write("script/ok", "#!/bin/sh\nexit 0\n", 0755);
  Write("script/spaced", "#!  /bin/sh -e\nexit 0\n", 0755);
  Write("script/relative", "#!sh\n", 0755);
  Write("script/env", "#!/usr/bin/env sh\n", 0755);
  Write("script/path_arg", absl::StrCat("#!/bin/sh ", root_, "/x\n"), 0755);
  Write("script/bad_interp", absl::StrCat("#!", root_, "/gw/snapd\n"), 0755);
  Write("script/nested", absl::StrCat("#!", root_, "/script/ok\n"), 0755);
  Write("script/long", "#!/bin/sh" + std::string(300, ' ') + "\n", 0755);
  // The interpreter named through a directory others can write to: the kernel would look it up
  // again at exec, after the check, and run whatever a swap put there.
  Dir("gwlinks", 0775);
  Link("/bin/sh", "gwlinks/sh");
  Write("script/gw_interp", absl::StrCat("#!", root_, "/gwlinks/sh\n"), 0755);
  Dir("bin", 0755);
  Link("/usr/bin/env", "bin/e");
  Write("script/env_link", absl::StrCat("#!", root_, "/bin/e sh\n"), 0755);
  Write("script/env_link_noarg", absl::StrCat("#!", root_, "/bin/e\n"), 0755);
  ExpectCases(
      root_,
      {
          {"script/ok", C::kOk, ""},
          {"script/spaced", C::kOk, ""},
          {"script/relative", C::kFailedPrecondition,
           "script ROOT/script/relative: its interpreter 'sh' is not an absolute path"},
          {"script/env", C::kFailedPrecondition, "#!/usr/bin/env looks the program up in PATH"},
          {"script/path_arg", C::kFailedPrecondition, "passes 'ROOT/x' to /bin/sh"},
          {"script/bad_interp", C::kPermissionDenied,
           "script ROOT/script/bad_interp: interpreter ROOT/gw/snapd is writable by group"},
          {"script/nested", C::kFailedPrecondition,
           "script ROOT/script/nested: interpreter ROOT/script/ok is not an ELF executable"},
          {"script/long", C::kFailedPrecondition, "does not end within its first 256 bytes"},
          {"script/gw_interp", C::kPermissionDenied,
           "script ROOT/script/gw_interp: directory ROOT/gwlinks is writable by group"},
          {"script/env_link", C::kFailedPrecondition, "passes 'sh' to ROOT/bin/e"},
          {"script/env_link_noarg", C::kFailedPrecondition,
           "interpreter ROOT/bin/e is /usr/bin/env, which looks the program up in PATH"},
      });
  absl::StatusOr<TrustedExecutable> ok = OpenTrustedExecutable(root_ + "/script/spaced", geteuid());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->is_script());
  EXPECT_EQ(ok->shebang.interpreter, "/bin/sh");
  EXPECT_EQ(ok->shebang.option, "-e");
  // The interpreter's fd is the file /bin/sh leads to.
  struct stat want, got;
  ASSERT_EQ(stat("/bin/sh", &want), 0);
  ASSERT_EQ(fstat(ok->interpreter.get(), &got), 0);
  EXPECT_EQ(got.st_ino, want.st_ino);
  EXPECT_FALSE(OpenTrustedExecutable(root_ + "/ok/snapd", geteuid())->is_script());
}

// An ELF file's loader (PT_INTERP) is opened by name by the kernel at exec: it passes the walk.
TEST_F(TrustedFilesTest, Loaders) {
  using C = absl::StatusCode;
  Write("lib/ld.so", Elf(), 0755);
  Write("gw/ld.so", Elf(), 0775);
  Dir("gwlib", 0775);
  Write("gwlib/ld.so", Elf(), 0755);
  Write("elf/ok", Elf(root_ + "/lib/ld.so"), 0755);
  Write("elf/gw", Elf(root_ + "/gw/ld.so"), 0755);
  Write("elf/gwdir", Elf(root_ + "/gwlib/ld.so"), 0755);
  Write("elf/missing", Elf(root_ + "/lib/nope.so"), 0755);
  Write("elf/dir", Elf(root_ + "/lib"), 0755);
  std::string bad_phdr = Elf(root_ + "/lib/ld.so");
  bad_phdr[offsetof(Elf64_Ehdr, e_phoff) + 4] = 0x7f;  // past the end
  Write("elf/bad_phdr", bad_phdr, 0755);
  Write("interp/gw", absl::StrCat("#!", root_, "/elf/gw\n"), 0755);
  ExpectCases(root_,
              {
                  {"elf/ok", C::kOk, ""},
                  {"elf/gw", C::kPermissionDenied,
                   "binary ROOT/elf/gw: loader ROOT/gw/ld.so is writable by group"},
                  {"elf/gwdir", C::kPermissionDenied,
                   "binary ROOT/elf/gwdir: directory ROOT/gwlib is writable by group"},
                  {"elf/missing", C::kInvalidArgument,
                   "binary ROOT/elf/missing: cannot open ROOT/lib/nope.so"},
                  {"elf/dir", C::kFailedPrecondition, "loader ROOT/lib is not a regular file"},
                  {"elf/bad_phdr", C::kFailedPrecondition, "its program headers are past its end"},
                  {"interp/gw", C::kPermissionDenied,
                   "script ROOT/interp/gw: interpreter ROOT/elf/gw: loader ROOT/gw/ld.so is "
                   "writable by group"},
              });
  // This machine's own binaries pass, loader and all.
  EXPECT_TRUE(OpenTrustedExecutable("/bin/sh", geteuid()).ok())
      << OpenTrustedExecutable("/bin/sh", geteuid()).status();
}

// Mounts a user could make (nosuid) are refused, for the file and for a directory on the way.
// Needs root: a tmpfs is mounted in a mount namespace of the test's own.
TEST_F(TrustedFilesTest, NosuidMounts) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount";
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    GTEST_SKIP() << "no mount namespace: " << strerror(errno);
  std::string mnt = Dir("mnt", 0755);
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID, "mode=0755"), 0) << strerror(errno);
  mounted_ = mnt;
  Write("mnt/snapd", Elf(), 0755);
  Write("script", absl::StrCat("#!", root_, "/mnt/snapd\n"), 0755);
  ExpectCases(root_,
              {
                  {"mnt/snapd", absl::StatusCode::kPermissionDenied,
                   "directory ROOT/mnt is on a file system mounted nosuid, as every mount a user "
                   "can make is"},
                  {"script", absl::StatusCode::kPermissionDenied,
                   "script ROOT/script: directory ROOT/mnt is on a file system mounted nosuid"},
              });
  // A run dir may be on one (/run is nosuid on most hosts).
  EXPECT_TRUE(PrepareRunDir(root_ + "/mnt/run", geteuid()).ok());
}

TEST_F(TrustedFilesTest, OwnedBySomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  Write("theirs/snapd", Elf(), 0755);
  ASSERT_EQ(chown((root_ + "/theirs").c_str(), kOther, kOther), 0);
  Write("file/snapd", Elf(), 0755);
  ASSERT_EQ(chown((root_ + "/file/snapd").c_str(), kOther, kOther), 0);
  Dir("links", 0755);
  Link(root_ + "/file/snapd", "links/snapd");
  ASSERT_EQ(chown((root_ + "/links").c_str(), kOther, kOther), 0);
  auto dir = OpenTrustedExecutable(root_ + "/theirs/snapd", 0);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(dir.status().message(),
            absl::StrCat("directory ", root_, "/theirs is owned by uid 1000"));
  auto file = OpenTrustedExecutable(root_ + "/file/snapd", 0);
  EXPECT_EQ(file.status().message(),
            absl::StrCat("binary ", root_, "/file/snapd is owned by uid 1000"));
  // A symlink in someone else's directory is not followed, whatever it points to.
  Write("ok/snapd", Elf(), 0755);
  unlink((root_ + "/links/snapd").c_str());
  Link(root_ + "/ok/snapd", "links/snapd");
  EXPECT_EQ(OpenTrustedExecutable(root_ + "/links/snapd", 0).status().message(),
            absl::StrCat("directory ", root_, "/links is owned by uid 1000"));
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
  Link(fresh, "link");
  absl::Status link = PrepareRunDir(root_ + "/link", self);
  EXPECT_EQ(link.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(link.message()), HasSubstr("is a symlink"));
  // ...but one among its parents, in a directory only we can change, is followed.
  Link(root_ + "/run", "runlink");
  EXPECT_TRUE(PrepareRunDir(root_ + "/runlink/b/snapd", self).ok());
  EXPECT_EQ(stat((root_ + "/run/b/snapd").c_str(), &st), 0);
  Write("file", "x", 0644);
  EXPECT_EQ(PrepareRunDir(root_ + "/file", self).code(), absl::StatusCode::kFailedPrecondition);
  // Someone else's.
  absl::Status theirs = PrepareRunDir(fresh, self + 1);
  EXPECT_EQ(theirs.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(theirs.message()),
              HasSubstr(absl::StrCat("run dir ", fresh, " is owned by uid ", self)));
  // Under a directory others can change: refused, and nothing made there.
  std::string open_parent = Dir("gw", 0775);
  absl::Status under = PrepareRunDir(open_parent + "/snapd", self);
  EXPECT_EQ(under.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(under.message()),
              HasSubstr(absl::StrCat("run dir ", open_parent, "/snapd: directory ", open_parent,
                                     " is writable by group: give snapd a --run_dir")));
  EXPECT_NE(stat((open_parent + "/snapd").c_str(), &st), 0);
  absl::Status sticky_parent = PrepareRunDir(Dir("tmp", 01777) + "/snapd", self);
  EXPECT_THAT(std::string(sticky_parent.message()), HasSubstr("is writable by group and others"));
  EXPECT_EQ(PrepareRunDir("run/snapd", self).code(), absl::StatusCode::kInvalidArgument);
  umask(mask);
}

}  // namespace
}  // namespace snapd
