// Trusted paths: the files and directories snapd acts on with its own privileges must be ones only
// root and snapd's own user can change (see SECURITY.md). Used for the binary an upgrade executes
// and for the run directory that holds snapd's sockets. Callable from any thread; no state.
#ifndef SNAPD_SNAPD_TRUSTED_PATH_H_
#define SNAPD_SNAPD_TRUSTED_PATH_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/unique_fd.h"

namespace snapd {

// Why the file or directory `st` describes could be changed by someone other than root and `self`
// (snapd's effective uid), as "<what> <path> is owned by uid 1000" or "<what> <path> is writable by
// group" (or "by others", "by group and others"); empty if only root and `self` can change it.
// A sticky bit does not help: /tmp is world-writable whatever it says about renames. Pure.
std::string WhyNotTrusted(const struct stat& st, absl::string_view what, absl::string_view path,
                          uid_t self);

// An executable opened once, for an exec by fd (fexecve), after its checks.
struct TrustedExecutable {
  UniqueFd fd;       // read-only, close-on-exec: the very file checked
  std::string path;  // the path resolved (realpath) and checked
  // A "#!" script: the kernel runs its interpreter (checked as well) on /dev/fd/N, so the fd must
  // stay open across the exec instead of closing with it.
  bool script = false;
};

// Resolves `path` (realpath), then walks it from / with one fd per directory (no symlink followed
// after the resolution) and opens the file: every directory and the file must be owned by root or
// `self` and writable by no one else (WhyNotTrusted); the file must be a regular, executable ELF
// binary or a "#!" script whose interpreter passes the same checks and is an ELF binary.
// Errors: INVALID_ARGUMENT if the path cannot be resolved or opened; PERMISSION_DENIED with the
// reason if someone else could change the file or a directory above it; FAILED_PRECONDITION if it
// is no regular file, not executable, on a noexec mount, or neither ELF nor a script.
absl::StatusOr<TrustedExecutable> OpenTrustedExecutable(const std::string& path, uid_t self);

// Makes the run directory `dir` (and missing parents, mode 0755) and checks it: it must be a
// directory (not a symlink) owned by `self`. One of ours that group or others may write to is
// tightened (those write bits removed, a WARNING logged). Errors: PERMISSION_DENIED naming the
// owner or the failed call; FAILED_PRECONDITION if it is a symlink or no directory.
absl::Status PrepareRunDir(const std::string& dir, uid_t self);

// The extra flags an Upgrade passes on to the new snapd, from an allowlist: the takeover testing
// flags (--takeover_fault=, --takeover_version=, --takeover_defer_nics). Any other argument is
// refused (PERMISSION_DENIED) with its name: the new snapd runs as root with whatever it is told.
// Pure.
absl::Status CheckNewSnapdArgs(const std::vector<std::string>& args);

}  // namespace snapd

#endif  // SNAPD_SNAPD_TRUSTED_PATH_H_
