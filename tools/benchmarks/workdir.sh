# Sourced by the benchmark scripts: `bench_workdir NAME` makes $work, a directory snapd accepts as
# its run dir's parent (snapd refuses one any other user could change, as /tmp is: as root under
# /var/lib/snapd-test, else under $XDG_RUNTIME_DIR), and arranges for the processes in $pids to be
# stopped and $work removed when the script exits.
bench_workdir() {
  local name=$1
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p -m 0755 /var/lib/snapd-test
    work=$(mktemp -d "/var/lib/snapd-test/$name.XXXXXX")
  else
    work=$(mktemp -d "${XDG_RUNTIME_DIR:?$name: needs root or XDG_RUNTIME_DIR}/$name.XXXXXX")
  fi
  pids=()
  trap _bench_cleanup EXIT
}

_bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
