# Helpers for the shell integration tests: waiting on conditions with deadlines, cleanup on exit,
# and assertions that say what was expected. Source it; it sets -euo pipefail.
set -euo pipefail

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
WORK=$(mktemp -d "/tmp/snapd-${TEST_NAME}.XXXXXX")
_pids=()
_failures=0

cleanup() {
  local p
  for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
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

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND until it succeeds or the deadline passes.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "FAIL: timed out after ${secs}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.05
  done
}

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
