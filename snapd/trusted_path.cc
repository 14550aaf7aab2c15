#include "snapd/trusted_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"

namespace snapd {
namespace {

std::string Errno() { return strerror(errno); }

// OpenTrustedExecutable, `depth` interpreters deep (a script's interpreter may not be a script).
absl::StatusOr<TrustedExecutable> OpenExecutable(const std::string& path, uid_t self, int depth,
                                                 absl::string_view what) {
  char* resolved_c = realpath(path.c_str(), nullptr);
  if (resolved_c == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot resolve ", path, ": ", Errno()));
  }
  const std::string resolved(resolved_c);
  free(resolved_c);
  // One fd per directory, each opened relative to the last one checked: what is checked is what
  // is walked, even if someone renames things meanwhile (a symlink planted after the realpath
  // above fails the walk instead of being followed).
  UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat st;
  if (!dir || fstat(dir.get(), &st) != 0) {
    return absl::InternalError(absl::StrCat("cannot open /: ", Errno()));
  }
  std::string why = WhyNotTrusted(st, "directory", "/", self);
  if (!why.empty()) return absl::PermissionDeniedError(why);
  std::vector<std::string> parts = absl::StrSplit(resolved, '/', absl::SkipEmpty());
  if (parts.empty()) return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " is /"));
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += "/" + parts[i];
    UniqueFd next(
        openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next || fstat(next.get(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": cannot open directory ", walked, ": ", Errno()));
    }
    why = WhyNotTrusted(st, "directory", walked, self);
    if (!why.empty()) return absl::PermissionDeniedError(why);
    dir = std::move(next);
  }
  const std::string& name = parts.back();
  // Looked at without opening it first: opening a FIFO or a device for reading can block or act.
  UniqueFd node(openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!node || fstat(node.get(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot open ", resolved, ": ", Errno()));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", resolved, " is not a regular file"));
  }
  TrustedExecutable exe;
  exe.path = resolved;
  exe.fd = UniqueFd(openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  struct stat opened;
  if (!exe.fd || fstat(exe.fd.get(), &opened) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot open ", resolved, ": ", Errno()));
  }
  if (opened.st_dev != st.st_dev || opened.st_ino != st.st_ino) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", resolved, " was replaced while being checked: try again"));
  }
  why = WhyNotTrusted(opened, what, resolved, self);
  if (!why.empty()) return absl::PermissionDeniedError(why);
  if ((opened.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
    return absl::FailedPreconditionError(absl::StrFormat("%s %s is not executable (mode %04o)",
                                                         what, resolved, opened.st_mode & 07777));
  }
  struct statvfs fs;
  if (fstatvfs(exe.fd.get(), &fs) == 0 && (fs.f_flag & ST_NOEXEC)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", resolved, " is on a file system mounted noexec"));
  }
  // What the kernel will run: an ELF binary, or a script's interpreter (whose own path the
  // kernel opens by name: it must pass the same checks).
  char head[256] = {};
  ssize_t n = pread(exe.fd.get(), head, sizeof(head) - 1, 0);
  if (n >= 4 && memcmp(head,
                       "\x7f"
                       "ELF",
                       4) == 0)
    return exe;
  if (n >= 2 && head[0] == '#' && head[1] == '!' && depth == 0) {
    absl::string_view line(head + 2, static_cast<size_t>(n) - 2);
    line = line.substr(0, line.find('\n'));
    line.remove_prefix(std::min(line.find_first_not_of(" \t"), line.size()));
    absl::string_view interpreter = line.substr(0, line.find_first_of(" \t"));
    if (!absl::StartsWith(interpreter, "/")) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " ", resolved, " is a script without an absolute interpreter path"));
    }
    absl::StatusOr<TrustedExecutable> interp = OpenExecutable(
        std::string(interpreter), self, depth + 1, absl::StrCat("the interpreter of ", resolved));
    if (!interp.ok()) return interp.status();
    exe.script = true;
    return exe;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      what, " ", resolved,
      depth == 0 ? " is neither an ELF executable nor a #! script" : " is not an ELF executable"));
}

absl::Status MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string partial = path.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::PermissionDeniedError(absl::StrCat("cannot create ", partial, ": ", Errno()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string WhyNotTrusted(const struct stat& st, absl::string_view what, absl::string_view path,
                          uid_t self) {
  if (st.st_uid != 0 && st.st_uid != self) {
    return absl::StrCat(what, " ", path, " is owned by uid ", st.st_uid);
  }
  const bool group = st.st_mode & S_IWGRP;
  const bool others = st.st_mode & S_IWOTH;
  if (!group && !others) return "";
  return absl::StrCat(what, " ", path, " is writable by ",
                      group && others ? "group and others"
                      : group         ? "group"
                                      : "others");
}

absl::StatusOr<TrustedExecutable> OpenTrustedExecutable(const std::string& path, uid_t self) {
  return OpenExecutable(path, self, 0, "binary");
}

absl::Status PrepareRunDir(const std::string& dir, uid_t self) {
  absl::Status made = MakeDirs(dir);
  if (!made.ok()) return made;
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    struct stat link;
    // O_DIRECTORY is checked before O_NOFOLLOW: a symlink shows as ENOTDIR (or ELOOP).
    if ((err == ENOTDIR || err == ELOOP) && lstat(dir.c_str(), &link) == 0 &&
        S_ISLNK(link.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("run dir ", dir, " is a symlink: give snapd a directory of its own"));
    }
    return absl::Status(err == ENOTDIR ? absl::StatusCode::kFailedPrecondition
                                       : absl::StatusCode::kPermissionDenied,
                        absl::StrCat("cannot open run dir ", dir, ": ", strerror(err)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot stat run dir ", dir, ": ", Errno()));
  }
  // Another user's directory is refused, not taken over: whoever owns it can swap the sockets in
  // it under snapd, and may have made it so on purpose.
  if (st.st_uid != self) {
    return absl::PermissionDeniedError(
        absl::StrCat("run dir ", dir, " is owned by uid ", st.st_uid, ", not snapd's uid ", self,
                     ": remove it or give snapd a --run_dir of its own"));
  }
  const mode_t open_to_others = st.st_mode & (S_IWGRP | S_IWOTH);
  if (open_to_others != 0) {
    const mode_t mode = st.st_mode & 07777 & ~open_to_others;
    if (fchmod(fd.get(), mode) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot tighten run dir ", dir, ": ", Errno()));
    }
    LOG(WARNING) << absl::StrFormat(
        "run dir %s was mode %04o: others could replace its sockets; "
        "now %04o",
        dir, st.st_mode & 07777, mode);
  }
  return absl::OkStatus();
}

absl::Status CheckNewSnapdArgs(const std::vector<std::string>& args) {
  // Flags that take a value, and flags that may stand alone (booleans).
  static constexpr absl::string_view kValued[] = {"takeover_fault", "takeover_version"};
  static constexpr absl::string_view kBoolean[] = {"takeover_defer_nics"};
  for (const std::string& arg : args) {
    absl::string_view flag = arg;
    if (!absl::ConsumePrefix(&flag, "--")) {
      return absl::PermissionDeniedError(absl::StrCat(
          "new_args: '", arg, "' is not a --flag; the upgrade passes on only --",
          absl::StrJoin(kValued, "=, --"), "= and --", absl::StrJoin(kBoolean, ", --")));
    }
    const size_t eq = flag.find('=');
    absl::string_view name = flag.substr(0, eq);
    bool allowed = false;
    for (absl::string_view v : kValued) allowed |= name == v && eq != absl::string_view::npos;
    for (absl::string_view b : kBoolean) allowed |= name == b;
    if (!allowed) {
      return absl::PermissionDeniedError(
          absl::StrCat("new_args: --", name, " is not a flag the upgrade passes on (only --",
                       absl::StrJoin(kValued, "=, --"), "= and --", absl::StrJoin(kBoolean, ", --"),
                       ", for testing)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace snapd
