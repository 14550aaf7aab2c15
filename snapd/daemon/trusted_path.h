// Trusted paths: the files and directories snapd acts on with its own privileges must be ones only
// root and snapd's own user can change (see SECURITY.md). Used for the binary an upgrade executes
// (and a script's interpreter, and an ELF file's loader) and for the run directory that holds
// snapd's sockets. Callable from any thread; no state.
#ifndef SNAPD_SNAPD_DAEMON_TRUSTED_PATH_H_
#define SNAPD_SNAPD_DAEMON_TRUSTED_PATH_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace snapd {

// Why the file or directory `st` describes could be changed by someone other than root and `self`
// (snapd's effective uid), as "<what> <path> is owned by uid 1000" or "<what> <path> is writable by
// group" (or "by others", "by group and others"); empty if only root and `self` can change it.
// A sticky bit does not help: /tmp is world-writable whatever it says about renames. Pure.
std::string WhyNotTrusted(const struct stat& st, absl::string_view what, absl::string_view path,
                          uid_t self);

// Why a file system with this type (statfs f_type) and these mount flags (statvfs f_flag) cannot
// vouch for who owns its files, as "<what> <path> is on a file system mounted nosuid (...)" or
// "... is on a FUSE file system (...)"; empty if it can. Refused: nosuid mounts (every mount a user
// can make, with fusermount or udisks, is nosuid), FUSE (its server, not the kernel, answers stat)
// and network file systems (NFS, SMB/CIFS, Ceph, AFS, Coda, 9p, NCP: the server answers). Pure.
std::string WhyNotTrustedFileSystem(long type, unsigned long flags, absl::string_view what,
                                    absl::string_view path);

// The "#!" line of a script, as snapd runs it (never the kernel, which would look the interpreter
// up by name again at exec).
struct Shebang {
  std::string interpreter;  // an absolute path, as written
  std::string option;       // the one option passed to it ("-e"), or empty
};

// Parses the start of a script (`head`: its first bytes, at least up to its first newline;
// `script` names it in errors). The line must name an absolute interpreter other than env (which
// would look the program up in PATH) and pass it at most one option, a single word starting with
// '-' (anything else is a path the interpreter would run instead of the script). Errors:
// FAILED_PRECONDITION saying which rule the line breaks. Pure.
absl::StatusOr<Shebang> ParseShebang(absl::string_view head, absl::string_view script);

// An executable opened once and checked, for an exec by fd (fexecve).
struct TrustedExecutable {
  UniqueFd fd;       // read-only, close-on-exec: the very file checked
  std::string path;  // where it is: the path as given, every symlink followed as it was walked
  // A "#!" script: snapd runs the interpreter itself (checked as well, an ELF binary, opened
  // close-on-exec) on /dev/fd/N, the script's fd kept open across the exec.
  UniqueFd interpreter;
  Shebang shebang;
  bool is_script() const { return interpreter.valid(); }
};

// Walks `path` (absolute) from / one component at a time, each opened relative to the directory
// fd checked before it, and opens the file. Every directory looked into must be owned by root or
// `self` and writable by no one else (WhyNotTrusted), on a file system that can vouch for it
// (WhyNotTrustedFileSystem): a symlink is followed only because the directory that holds it passed
// those checks, so only root and `self` could have planted it. The file must pass the same checks
// and be a regular, executable ELF file, whose loader (PT_INTERP, which the kernel opens by name)
// passes the walk too, or a "#!" script (ParseShebang) whose interpreter passes all of this and is
// ELF. Errors: INVALID_ARGUMENT if the path is relative or a component cannot be opened;
// PERMISSION_DENIED with the reason if someone else could change the file or a directory on the
// way, or the file system cannot say; FAILED_PRECONDITION if it is no regular file, not
// executable, on a noexec mount, neither ELF nor a script, or the script's line is refused.
absl::StatusOr<TrustedExecutable> OpenTrustedExecutable(const std::string& path, uid_t self);

// The argv to fexecve `exe` with: {name, args...} for an ELF binary; {interpreter, [option],
// "/dev/fd/<script_fd>", args...} for a script, whose fd the child keeps open at `script_fd`.
// Pure.
std::vector<std::string> ExecArgv(const TrustedExecutable& exe, const std::string& name,
                                  int script_fd, const std::vector<std::string>& args);

// Makes the run directory `dir` (absolute; missing directories 0755) and checks it: every
// directory above it must pass the checks of OpenTrustedExecutable's walk (a symlink among them is
// followed only in a trusted directory); `dir` itself must be a directory (not a symlink) owned by
// `self`. One of ours that group or others may write to is tightened (those write bits removed, a
// WARNING logged). Errors: PERMISSION_DENIED naming the owner, the directory above that others
// could change, or the failed call; FAILED_PRECONDITION if it is a symlink or no directory;
// INVALID_ARGUMENT if it is relative.
absl::Status PrepareRunDir(const std::string& dir, uid_t self);

// The extra flags an Upgrade passes on to the new snapd, from an allowlist: the upgrade testing
// flags (--upgrade_fault=, --upgrade_version=, --upgrade_defer_nics). Any other argument is
// refused (PERMISSION_DENIED) with its name: the new snapd runs as root with whatever it is told.
// Pure.
absl::Status CheckNewSnapdArgs(const std::vector<std::string>& args);

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_TRUSTED_PATH_H_
