#include "snapd/daemon/trusted_path.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"

namespace snapd {
namespace {

std::string Errno() { return strerror(errno); }

constexpr int kMaxSymlinks = 40;  // as the kernel's path walk
// What the kernel reads of a file to choose how to run it (BINPRM_BUF_SIZE).
constexpr size_t kExecHead = 256;

// WhyNotTrustedFileSystem for the file system `fd` is on; `nosuid` says whether a nosuid mount is
// refused (it is for what snapd executes, not for the run dir: /run is nosuid on most hosts).
std::string WhyNotTrustedMount(int fd, bool nosuid, absl::string_view what,
                               absl::string_view path) {
  struct statfs fs;
  struct statvfs vfs;
  if (fstatfs(fd, &fs) != 0 || fstatvfs(fd, &vfs) != 0) {
    return absl::StrCat("cannot tell the file system of ", what, " ", path, ": ", Errno());
  }
  return WhyNotTrustedFileSystem(fs.f_type, nosuid ? vfs.f_flag : vfs.f_flag & ~ST_NOSUID, what,
                                 path);
}

// How a walk goes and names what it refuses.
struct WalkOptions {
  uid_t self;
  std::string context;  // before every refusal: "" or "script /x: "
  std::string what;     // the last component: "binary", "interpreter", "loader", "run dir"
  bool nosuid_refused = true;
  bool make_dirs = false;   // create missing components, 0755
  bool follow_last = true;  // false: a symlink at the end is returned as one
};

// Where a walk ended.
struct Walked {
  UniqueFd dir;      // the directory holding `name` (none if the path ended in "." or "..")
  std::string name;  // the last component
  std::string path;  // where it is, every symlink before it followed
  UniqueFd node;     // O_PATH | O_NOFOLLOW on it
  struct stat st {};
};

std::string PathOf(const std::vector<std::string>& parts) {
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

// Walks `path` from / as the kernel would, but one component at a time with an fd per directory,
// refusing to look into a directory that is not trusted (owner, mode, file system). A symlink is
// read and followed by the walk itself: the directory holding it is trusted, so only root and
// `self` could have made it point where it does.
absl::StatusOr<Walked> Walk(const std::string& path, const WalkOptions& o) {
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.context, o.what, " path '", path,
                     "' is not absolute (snapd does not resolve it for you)"));
  }
  std::deque<std::string> todo;  // the components left, in order
  auto push_front = [&todo](absl::string_view p) {
    std::vector<std::string> parts = absl::StrSplit(p, '/', absl::SkipEmpty());
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  push_front(path);
  UniqueFd dir;
  std::vector<std::string> at;  // the components of the path `dir` is
  auto enter = [&](UniqueFd fd) -> absl::Status {
    const std::string here = PathOf(at);
    struct stat st;
    if (!fd || fstat(fd.get(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.context, "cannot open directory ", here, ": ", Errno()));
    }
    std::string why = WhyNotTrusted(st, "directory", here, o.self);
    if (why.empty()) why = WhyNotTrustedMount(fd.get(), o.nosuid_refused, "directory", here);
    if (!why.empty()) return absl::PermissionDeniedError(absl::StrCat(o.context, why));
    dir = std::move(fd);
    return absl::OkStatus();
  };
  auto to_root = [&]() {
    at.clear();
    return enter(UniqueFd(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)));
  };
  absl::Status entered = to_root();
  int links = 0;
  while (entered.ok() && !todo.empty()) {
    const std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (at.empty()) continue;  // /.. is /
      at.pop_back();
      entered = enter(UniqueFd(openat(dir.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC)));
      continue;
    }
    const bool last = todo.empty();
    const std::string child = absl::StrCat(at.empty() ? "" : PathOf(at), "/", name);
    UniqueFd node(openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node && errno == ENOENT && o.make_dirs) {
      if (mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::PermissionDeniedError(
            absl::StrCat(o.context, "cannot create ", child, ": ", Errno()));
      }
      node.reset(openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
    struct stat st;
    if (!node || fstat(node.get(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.context, "cannot open ", child, ": ", Errno()));
    }
    if (S_ISLNK(st.st_mode) && (!last || o.follow_last)) {
      if (++links > kMaxSymlinks) {
        return absl::InvalidArgumentError(
            absl::StrCat(o.context, "too many symlinks in ", path, " (at ", child, ")"));
      }
      char target[PATH_MAX];
      const ssize_t n = readlinkat(node.get(), "", target, sizeof(target));
      if (n <= 0 || n == static_cast<ssize_t>(sizeof(target))) {
        return absl::InvalidArgumentError(
            absl::StrCat(o.context, "cannot read symlink ", child, ": ", Errno()));
      }
      const absl::string_view to(target, static_cast<size_t>(n));
      push_front(to);
      if (absl::StartsWith(to, "/")) entered = to_root();
      continue;
    }
    if (!last) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(o.context, child, " is not a directory"));
      }
      at.push_back(name);
      entered = enter(std::move(node));
      continue;
    }
    Walked end;
    end.dir = std::move(dir);
    end.name = name;
    end.path = child;
    end.node = std::move(node);
    end.st = st;
    return end;
  }
  if (!entered.ok()) return entered;
  // The path ends in a directory reached by "/", "." or "..".
  Walked end;
  end.name = ".";
  end.path = PathOf(at);
  end.node = std::move(dir);
  fstat(end.node.get(), &end.st);
  return end;
}

// The loader an ELF file names (PT_INTERP: the kernel opens it by name at exec), "" if none (a
// static binary), for one ELF class.
template <typename Ehdr, typename Phdr>
absl::StatusOr<std::string> ElfLoader(int fd, absl::string_view what, absl::string_view path) {
  auto unreadable = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " is not an ELF file this machine can run: ", why));
  };
  Ehdr eh;
  if (pread(fd, &eh, sizeof(eh), 0) != static_cast<ssize_t>(sizeof(eh))) {
    return unreadable("its ELF header is cut short");
  }
  if (eh.e_phnum > 0 && eh.e_phentsize != sizeof(Phdr)) {
    return unreadable("its program headers are of an unknown size");
  }
  for (uint32_t i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    const uint64_t at = static_cast<uint64_t>(eh.e_phoff) + uint64_t{i} * sizeof(Phdr);
    if (at > static_cast<uint64_t>(INT64_MAX / 2) ||
        pread(fd, &ph, sizeof(ph), static_cast<off_t>(at)) != static_cast<ssize_t>(sizeof(ph))) {
      return unreadable("its program headers are past its end");
    }
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz < 2 || ph.p_filesz > PATH_MAX ||
        static_cast<uint64_t>(ph.p_offset) > static_cast<uint64_t>(INT64_MAX / 2)) {
      return unreadable("its loader's name is of a bad size");
    }
    std::string loader(static_cast<size_t>(ph.p_filesz), '\0');
    if (pread(fd, loader.data(), loader.size(), static_cast<off_t>(ph.p_offset)) !=
            static_cast<ssize_t>(loader.size()) ||
        loader.back() != '\0' || loader.find('\0') != loader.size() - 1) {
      return unreadable("its loader's name cannot be read");
    }
    loader.pop_back();
    return loader;
  }
  return std::string();
}

absl::StatusOr<TrustedExecutable> OpenExecutable(const std::string& path, uid_t self,
                                                 const std::string& context,
                                                 const std::string& what, bool may_be_script);

// Checks the ELF file `fd` (at `path`): its loader, if it names one, must pass the walk.
absl::Status CheckElf(int fd, const char* head, uid_t self, const std::string& context,
                      const std::string& what, const std::string& path) {
  absl::StatusOr<std::string> loader =
      head[EI_CLASS] == ELFCLASS64   ? ElfLoader<Elf64_Ehdr, Elf64_Phdr>(fd, what, path)
      : head[EI_CLASS] == ELFCLASS32 ? ElfLoader<Elf32_Ehdr, Elf32_Phdr>(fd, what, path)
                                     : absl::FailedPreconditionError(absl::StrCat(
                                           what, " ", path, " is of an unknown ELF class"));
  if (!loader.ok())
    return absl::Status(loader.status().code(), absl::StrCat(context, loader.status().message()));
  if (loader->empty()) return absl::OkStatus();
  WalkOptions o{self, absl::StrCat(context, what, " ", path, ": "), "loader"};
  absl::StatusOr<Walked> walked = Walk(*loader, o);
  if (!walked.ok()) return walked.status();
  std::string why;
  if (!S_ISREG(walked->st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(o.context, "loader ", walked->path, " is not a regular file"));
  }
  why = WhyNotTrusted(walked->st, "loader", walked->path, self);
  if (why.empty()) why = WhyNotTrustedMount(walked->node.get(), true, "loader", walked->path);
  if (!why.empty()) return absl::PermissionDeniedError(absl::StrCat(o.context, why));
  return absl::OkStatus();
}

// OpenTrustedExecutable for `path`, named `what` ("binary", "interpreter") after `context` in
// refusals; a script only if `may_be_script` (an interpreter may not be one).
absl::StatusOr<TrustedExecutable> OpenExecutable(const std::string& path, uid_t self,
                                                 const std::string& context,
                                                 const std::string& what, bool may_be_script) {
  absl::StatusOr<Walked> walked = Walk(path, WalkOptions{self, context, what});
  if (!walked.ok()) return walked.status();
  const std::string& at = walked->path;
  auto refuse = [&](absl::StatusCode code, absl::string_view why) {
    return absl::Status(code, absl::StrCat(context, what, " ", at, " ", why));
  };
  // Looked at (O_PATH) before it is opened: opening a FIFO or a device for reading can block.
  if (!S_ISREG(walked->st.st_mode)) {
    return refuse(absl::StatusCode::kFailedPrecondition, "is not a regular file");
  }
  TrustedExecutable exe;
  exe.path = at;
  exe.fd = UniqueFd(openat(walked->dir.get(), walked->name.c_str(),
                           O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  struct stat opened;
  if (!exe.fd || fstat(exe.fd.get(), &opened) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, "cannot open ", what, " ", at, ": ", Errno()));
  }
  if (opened.st_dev != walked->st.st_dev || opened.st_ino != walked->st.st_ino) {
    return refuse(absl::StatusCode::kFailedPrecondition, "was replaced while being checked");
  }
  std::string why = WhyNotTrusted(opened, what, at, self);
  if (why.empty()) why = WhyNotTrustedMount(exe.fd.get(), true, what, at);
  if (!why.empty()) return absl::PermissionDeniedError(absl::StrCat(context, why));
  if ((opened.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
    return refuse(absl::StatusCode::kFailedPrecondition,
                  absl::StrFormat("is not executable (mode %04o)", opened.st_mode & 07777));
  }
  struct statvfs fs;
  if (fstatvfs(exe.fd.get(), &fs) == 0 && (fs.f_flag & ST_NOEXEC)) {
    return refuse(absl::StatusCode::kFailedPrecondition, "is on a file system mounted noexec");
  }
  // What the kernel would run: an ELF binary, or a script's interpreter, which snapd runs itself
  // from the fd it checked (the kernel would look the #! line's path up again at exec).
  char head[kExecHead + 1] = {};
  const ssize_t n = pread(exe.fd.get(), head, kExecHead, 0);
  const absl::string_view start(head, n > 0 ? static_cast<size_t>(n) : 0);
  if (absl::StartsWith(start, ELFMAG)) {
    absl::Status elf = CheckElf(exe.fd.get(), head, self, context, what, at);
    if (!elf.ok()) return elf;
    return exe;
  }
  if (!absl::StartsWith(start, "#!") || !may_be_script) {
    return refuse(absl::StatusCode::kFailedPrecondition,
                  may_be_script ? "is neither an ELF executable nor a #! script"
                                : "is not an ELF executable");
  }
  absl::StatusOr<Shebang> shebang = ParseShebang(start, at);
  if (!shebang.ok()) return shebang.status();
  const std::string script = absl::StrCat(context, "script ", at, ": ");
  absl::StatusOr<TrustedExecutable> interpreter =
      OpenExecutable(shebang->interpreter, self, script, "interpreter", false);
  if (!interpreter.ok()) return interpreter.status();
  // env by another name (a symlink to it) still looks its program up in PATH.
  if (absl::EndsWith(interpreter->path, "/env")) {
    return absl::FailedPreconditionError(
        absl::StrCat(script, "interpreter ", shebang->interpreter, " is ", interpreter->path,
                     ", which looks the program up in PATH: name the interpreter itself"));
  }
  exe.interpreter = std::move(interpreter->fd);
  exe.shebang = *std::move(shebang);
  return exe;
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

std::string WhyNotTrustedFileSystem(long type, unsigned long flags, absl::string_view what,
                                    absl::string_view path) {
  static constexpr struct {
    unsigned long magic;
    const char* name;
  } kServed[] = {
      {FUSE_SUPER_MAGIC, "a FUSE"}, {NFS_SUPER_MAGIC, "an NFS"},   {SMB_SUPER_MAGIC, "an SMB"},
      {CIFS_SUPER_MAGIC, "a CIFS"}, {SMB2_SUPER_MAGIC, "an SMB2"}, {CEPH_SUPER_MAGIC, "a Ceph"},
      {AFS_SUPER_MAGIC, "an AFS"},  {AFS_FS_MAGIC, "an AFS"},      {CODA_SUPER_MAGIC, "a Coda"},
      {V9FS_MAGIC, "a 9p"},         {NCP_SUPER_MAGIC, "an NCP"},
  };
  // statfs's f_type is a signed word whose magics are 32-bit.
  const unsigned long magic = static_cast<unsigned long>(type) & 0xffffffffUL;
  for (const auto& fs : kServed) {
    if (magic == fs.magic) {
      return absl::StrCat(what, " ", path, " is on ", fs.name,
                          " file system: its server, not the kernel, says who owns it");
    }
  }
  if (flags & ST_NOSUID) {
    return absl::StrCat(what, " ", path,
                        " is on a file system mounted nosuid, as every mount a user can make is");
  }
  return "";
}

absl::StatusOr<Shebang> ParseShebang(absl::string_view head, absl::string_view script) {
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("script ", script, ": ", why));
  };
  if (!absl::ConsumePrefix(&head, "#!")) return refuse("does not start with #!");
  const size_t end = head.find('\n');
  if (end == absl::string_view::npos) {
    return refuse(absl::StrCat("its #! line does not end within its first ", kExecHead, " bytes"));
  }
  absl::string_view line = head.substr(0, end);
  if (line.find('\0') != absl::string_view::npos) return refuse("its #! line holds a NUL byte");
  auto trim = [](absl::string_view s) {
    const size_t from = s.find_first_not_of(" \t");
    if (from == absl::string_view::npos) return absl::string_view();
    return s.substr(from, s.find_last_not_of(" \t") - from + 1);
  };
  line = trim(line);
  const absl::string_view interpreter = line.substr(0, line.find_first_of(" \t"));
  const absl::string_view rest = trim(line.substr(interpreter.size()));
  if (interpreter.empty()) return refuse("its #! line names no interpreter");
  if (!absl::StartsWith(interpreter, "/")) {
    return refuse(absl::StrCat("its interpreter '", interpreter, "' is not an absolute path"));
  }
  if (interpreter.substr(interpreter.rfind('/') + 1) == "env") {
    return refuse(absl::StrCat("#!", interpreter,
                               " looks the program up in PATH: name the interpreter by its "
                               "absolute path"));
  }
  if (!rest.empty() && (rest[0] != '-' || rest.find_first_of(" \t") != absl::string_view::npos)) {
    return refuse(absl::StrCat("its #! line passes '", rest, "' to ", interpreter,
                               ": only one option, starting with '-', may follow the interpreter "
                               "(anything else could be a file it runs instead of the script)"));
  }
  return Shebang{std::string(interpreter), std::string(rest)};
}

absl::StatusOr<TrustedExecutable> OpenTrustedExecutable(const std::string& path, uid_t self) {
  return OpenExecutable(path, self, "", "binary", true);
}

std::vector<std::string> ExecArgv(const TrustedExecutable& exe, const std::string& name,
                                  int script_fd, const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (exe.is_script()) {
    argv.push_back(exe.shebang.interpreter);
    if (!exe.shebang.option.empty()) argv.push_back(exe.shebang.option);
    argv.push_back(absl::StrCat("/dev/fd/", script_fd));
  } else {
    argv.push_back(name);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::Status PrepareRunDir(const std::string& dir, uid_t self) {
  WalkOptions o{self, absl::StrCat("run dir ", dir, ": "), "run dir"};
  o.nosuid_refused = false;  // /run is nosuid on most hosts; users' mounts are not trusted anyway
  o.make_dirs = true;
  o.follow_last = false;
  absl::StatusOr<Walked> walked = Walk(dir, o);
  if (!walked.ok()) {
    if (walked.status().code() != absl::StatusCode::kPermissionDenied) return walked.status();
    // Whoever can change a directory above it can swap the run dir, and the sockets in it.
    return absl::PermissionDeniedError(
        absl::StrCat(walked.status().message(),
                     ": give snapd a --run_dir whose every directory only root and snapd's user "
                     "can change"));
  }
  if (S_ISLNK(walked->st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("run dir ", dir, " is a symlink: give snapd a directory of its own"));
  }
  if (!S_ISDIR(walked->st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("run dir ", dir, " is not a directory"));
  }
  UniqueFd fd(openat(walked->node.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st;
  if (!fd || fstat(fd.get(), &st) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot open run dir ", dir, ": ", Errno()));
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
  static constexpr absl::string_view kValued[] = {"upgrade_fault", "upgrade_version"};
  static constexpr absl::string_view kBoolean[] = {"upgrade_defer_nics"};
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
