# Helpers for the shell integration tests: waiting on conditions with deadlines, cleanup on exit,
# and assertions that say what was expected. Source it; it sets -euo pipefail.
set -euo pipefail
# Bazel runs tests with a minimal PATH; ip, ethtool and ss live in sbin on Debian.
export PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"
# ctl_json EXPR and json_check EXPR read `ctl --json ...` output (tests/json.sh says how); the
# benchmarks and tools/demo source json.sh alone, without this file's harness (trap, $WORK, set -e).
source "$(dirname "${BASH_SOURCE[0]}")/json.sh"

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
# An upgrade runs only a binary whose every directory only root and snapd's user can change, on a
# mount that is not nosuid (SECURITY.md); /tmp is writable by everyone and /run is a nosuid tmpfs on
# most hosts: the work dir, where tests copy the binaries they upgrade to, is under
# /var/lib/snapd-test as root (under $XDG_RUNTIME_DIR as another user, if there is one).
if [ "$(id -u)" -eq 0 ]; then
  _work_parent=/var/lib/snapd-test
  mkdir -p -m 0755 "$_work_parent"
elif [ -d "${XDG_RUNTIME_DIR:-}" ]; then
  _work_parent=$XDG_RUNTIME_DIR
else
  _work_parent=/tmp
fi
WORK=$(mktemp -d "$_work_parent/snapd-${TEST_NAME}.XXXXXX")
_pids=()
_failures=0

cleanup() {
  local p
  for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # A live upgrade execs the new snapd from the old one, so it is no child of ours: the binaries a
  # test runs live under $WORK, which names them uniquely.
  pkill -9 -f "^$WORK/" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"  # KEEP_WORK=1 keeps the logs for a look
}
trap cleanup EXIT

# Finds a built binary: under Bazel in the runfiles, else in bazel-bin.
bin() {
  local target=$1  # e.g. tools/memif_echo
  local r
  for r in "${RUNFILES_DIR:-}/snapd/$target" "${TEST_SRCDIR:-}/snapd/$target" "$(dirname "$0")/../bazel-bin/$target"; do
    [ -x "$r" ] && { echo "$r"; return; }
  done
  echo "cannot find $target; build it first" >&2
  exit 1
}

# Starts a command in the background, its output in $WORK/NAME.log; remembers it for cleanup.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  _pids+=($!)
  eval "PID_${name//-/_}=$!"
}

# wait_for SECONDS DESCRIPTION COMMAND... (tests/wait.sh)
source "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

# The value of KEY=N in the last line of FILE that has it.
field() {
  local file=$1 key=$2
  grep -o "\b$key=[0-9]*" "$file" | tail -1 | cut -d= -f2
}

check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAIL: $what" >&2
    _failures=$((_failures + 1))
  fi
}

finish() {
  if [ "$_failures" -ne 0 ]; then
    echo "$TEST_NAME: $_failures check(s) failed" >&2
    for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2
    exit 1
  fi
  echo "$TEST_NAME: all checks passed"
}

# --- snapd -------------------------------------------------------------------------------------
# The test's snapd keeps its sockets in $RUN (memif.sock, control.sock).
RUN="$WORK/run"
SNAPCTL=$(bin tools/snapctl 2>/dev/null) || SNAPCTL=""  # empty if the test does not depend on it
export RUN SNAPCTL

# start_snapd BINARY FLAGS...: starts snapd with its run dir at $RUN (output in snapd.log) and waits
# until its control API is up.
start_snapd() {
  local binary=$1; shift
  start snapd "$binary" --run_dir="$RUN" "$@"
  wait_for 30 "snapd ready" grep -q "control API" "$WORK/snapd.log"
}

# ctl ARGS...: snapctl against the test's snapd; CTL_TIMEOUT_S overrides snapctl's RPC deadline.
# Exported, so that a check can pipe it: check "..." bash -c "ctl info | grep -q ...".
ctl() { "$SNAPCTL" --socket="$RUN/control.sock" ${CTL_TIMEOUT_S:+--timeout_s=$CTL_TIMEOUT_S} "$@"; }
export -f ctl

# --- network namespaces -------------------------------------------------------------------------
# Namespaces and veths this test made; removed at exit, also on failure.
_netns=()
_veths=()
_cleanup_net() {
  local n v
  for v in "${_veths[@]}"; do ip link del "$v" 2>/dev/null || true; done
  for n in "${_netns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap 'cleanup; _cleanup_net' EXIT

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$TEST_NAME needs root (network namespaces, af_packet)" >&2
    exit 1
  fi
}

# make_host NS HOST_IF NS_IF ADDR/LEN: veth_host (tests/netns.sh), removed when the test ends.
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
make_host() {
  _netns+=("$1")
  _veths+=("$2")
  veth_host "$@"
}

# The value in column COL (1 = the first column after the name) of the row for NAME in the last
# stats table snapd logged to FILE.
stat_of() {
  local file=$1 name=$2 col=$3
  grep -E "^$name +" "$file" | tail -1 | awk -v c=$((col + 1)) '{print $c}'
}
