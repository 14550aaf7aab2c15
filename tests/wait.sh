# wait_for without a harness: tests/lib.sh sources it for the tests, tests/fleet.sh (and so the
# fleet benchmark) on its own. It only defines a function.

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
