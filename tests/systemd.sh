# A real systemd (Debian's 252) for a test or a benchmark: PID 1 of a private PID, mount and UTS
# namespace, booted into a unit set of our own so that nothing of the host's is started. Source it,
# then:
#   boot_systemd DIR UNIT_FILE...   boots it (DIR: a directory of the caller's for its files), with
#                                   the unit files given installed; sets SD (its PID 1 seen from here)
#   ns CMD...                       runs CMD inside (ns systemctl status snapd)
#   kill_systemd                    takes the namespace down and removes the cgroups systemd made on
#                                   the host's hierarchies; call it on every exit path
# ../shared/notes/systemd.md tells why each step is there. In short, a systemd booted with the
# host's units does to the host what it does at boot: tmpfiles cleans the host's /tmp, journald and
# utmp write into the host's /var/log, multi-user.target starts the host's services (a database,
# dpdk.service reserving hugepages), sysinit applies sysctls and binfmt handlers to the host's kernel.
# So: private tmpfs on /tmp, /var/tmp, /run and /var/log; an empty /etc/systemd/system and no
# generators; and in place of /usr/lib/systemd/system only empty targets, journald and the caller's
# units; and a tmpfs of its own on /sys/fs/cgroup. PID 1 still makes its cgroups in the host's
# hierarchies (there is no other), but in a cgroup namespace rooted in a cgroup of its own under
# the caller's: two systemds do not share `system.slice/snapd.service`, and neither leaves the
# caller's memory limit. kill_systemd removes every cgroup it made.

SD=""
_sd_unshare=""
_sd_dir=""

boot_systemd() {
  _sd_dir=$1
  shift
  local units="$_sd_dir/units" t
  mkdir -p "$units"
  for t in sysinit basic sockets timers paths slices local-fs swap shutdown multi-user network \
    network-online nss-lookup remote-fs emergency rescue final; do
    printf '[Unit]\nDescription=%s (empty: a test'"'"'s systemd)\n' "$t.target" >"$units/$t.target"
  done
  echo "Wants=systemd-journald.service" >>"$units/sysinit.target"
  ln -sf multi-user.target "$units/default.target"
  cp /usr/lib/systemd/system/systemd-journald.service /usr/lib/systemd/system/systemd-journald.socket \
    /usr/lib/systemd/system/systemd-journald-dev-log.socket "$units/"
  cp "$@" "$units/"
  find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort >"$_sd_dir/cgroups.before"
  # Kernel-wide settings PID 1 may write (systemd 252 raises fs.nr_open and fs.file-max and, where
  # it does not think itself in a container, points kernel.core_pattern at systemd-coredump):
  # kill_systemd puts back any it changed.
  local k
  : >"$_sd_dir/sysctls.before"
  for k in kernel/core_pattern fs/nr_open fs/file-max; do
    printf '%s\t%s\n' "$k" "$(cat /proc/sys/$k)" >>"$_sd_dir/sysctls.before"
  done
  findmnt -rn -t cgroup,cgroup2 -o TARGET,FSTYPE,OPTIONS >"$_sd_dir/cgroup.mounts"
  # A cgroup of its own in each hierarchy (cpuset aside: a new one there takes no process before
  # its cpus and mems are set), under the one this shell is in, and a cgroup namespace rooted
  # there: its units' cgroups (system.slice/snapd.service) are then its own, and two systemds
  # booted side by side (tests/fleet.sh) do not share them, nor escape this shell's limits.
  local cgroups=() t fs o controllers path
  while read -r t fs o; do
    controllers=$(echo "$o" | sed -E 's/(^|,)(rw|ro|relatime|nosuid|nodev|noexec)//g; s/^,//')
    [ "$controllers" = cpuset ] && continue
    if [ "$fs" = cgroup2 ]; then
      path=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' /proc/self/cgroup)
    else
      path=$(awk -F: -v c="$controllers" '$2 == c { print $3 }' /proc/self/cgroup)
    fi
    [ -n "$path" ] || continue
    cgroups+=("$t${path%/}/snapd-test-systemd.$$.$RANDOM")
  done <"$_sd_dir/cgroup.mounts"
  # /sys/fs/cgroup itself is a tmpfs of the host's: systemd remounts it read-write, adds directories
  # and links for the controllers it expects (cpu,cpuacct, perf_event...) and remounts it read-only.
  # It gets a tmpfs of its own, with the host's hierarchies mounted in it again (each shows the
  # namespace's cgroup as its root).
  printf '%s\n' "${cgroups[@]}" >"$_sd_dir/cgroups.own"
  (
    for t in "${cgroups[@]}"; do
      mkdir "$t" && echo "$BASHPID" >"$t/cgroup.procs" || exit 1
    done
    exec unshare --cgroup --fork --pid --mount --uts --mount-proc --propagation private --kill-child sh -c "
    for d in /tmp /var/tmp /run /var/log /etc/systemd/system /usr/lib/systemd/system-generators \
      /sys/fs/cgroup; do
      mount -t tmpfs -o mode=755 tmpfs \$d || exit 1; done &&
    while read -r t fs o; do
      mkdir -p \$t &&
      if [ \$fs = cgroup2 ]; then mount -t cgroup2 cgroup2 \$t; else
        mount -t cgroup -o \$(echo \$o | sed -E 's/(^|,)(rw|ro|relatime|nosuid|nodev|noexec)//g; s/^,//') \
          cgroup \$t; fi || exit 1
    done <'$_sd_dir/cgroup.mounts' &&
    mount --bind '$units' /usr/lib/systemd/system &&
    exec /lib/systemd/systemd --system --log-target=null"
  ) >"$_sd_dir/systemd.log" 2>&1 &
  _sd_unshare=$!
  local i
  for i in $(seq 100); do
    SD=$(pgrep -P "$_sd_unshare" -x systemd || true)
    [ -n "$SD" ] && break
    sleep 0.1
  done
  [ -n "$SD" ] || { echo "systemd did not start: $(cat "$_sd_dir/systemd.log")" >&2; return 1; }
  for i in $(seq 300); do
    [ "$(ns systemctl is-system-running 2>/dev/null)" = running ] && return 0
    sleep 0.1
  done
  echo "systemd did not come up: $(ns systemctl is-system-running 2>&1)" >&2
  ns systemctl --failed --no-pager >&2 || true
  return 1
}

ns() { nsenter -t "$SD" -m -p -u "$@"; }

# snapd_unit DIR RUN_DIR [SED_EXPR...]: snapd/snapd.service as installed for a test: snapd and
# snapctl from DIR, the config file DIR/snapd.textproto, snapctl on RUN_DIR's control socket;
# SED_EXPRs change more (-e "s|^WatchdogSec=.*|WatchdogSec=3s|"). Prints it.
snapd_unit() {
  local dir=$1 run=$2
  shift 2
  sed -e "s|/usr/sbin/snapd|$dir/snapd|g" \
    -e "s|/usr/bin/snapctl|$dir/snapctl --socket=$run/control.sock|" \
    -e "s|/etc/snapd/snapd.textproto|$dir/snapd.textproto|" "$@" \
    "$(dirname "${BASH_SOURCE[0]}")/../snapd/snapd.service"
}

kill_systemd() {
  if [ -n "$SD" ]; then kill -9 "$SD" 2>/dev/null || true; fi
  # Booting failed before systemd was found: unshare's --kill-child takes it down.
  if [ -n "$_sd_unshare" ] && [ -z "$SD" ]; then kill -9 "$_sd_unshare" 2>/dev/null || true; fi
  if [ -n "$_sd_unshare" ]; then wait "$_sd_unshare" 2>/dev/null || true; fi
  SD=""
  _sd_unshare=""
  [ -n "$_sd_dir" ] || return 0
  local k v
  if [ -f "$_sd_dir/sysctls.before" ]; then
    while IFS=$'\t' read -r k v; do
      if [ "$(cat /proc/sys/$k)" != "$v" ]; then
        echo "kill_systemd: putting $k back to '$v'" >&2
        printf '%s\n' "$v" >"/proc/sys/$k" || true
      fi
    done <"$_sd_dir/sysctls.before"
  fi
  [ -f "$_sd_dir/cgroups.before" ] || return 0
  # Deepest first; a cgroup empties a moment after its last process is reaped.
  local try d
  for try in $(seq 20); do
    # New since it booted: in its own cgroups, or outside any booted systemd's (another one booted
    # after it, still running, has its own, which are not ours to remove).
    find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort | comm -13 "$_sd_dir/cgroups.before" - |
      awk -v own="$_sd_dir/cgroups.own" 'BEGIN { while ((getline l < own) > 0) mine[l] = 1 }
        { for (m in mine) if (index($0, m) == 1) { print; next } }
        !/\/snapd-test-systemd\./ { print }' |
      sort -r >"$_sd_dir/cgroups.new"
    [ -s "$_sd_dir/cgroups.new" ] || return 0
    while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$_sd_dir/cgroups.new"
    sleep 0.1
  done
  echo "kill_systemd: cgroups left behind: $(tr '\n' ' ' <"$_sd_dir/cgroups.new")" >&2
}
