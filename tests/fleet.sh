# A fleet of snapd hosts on one machine, for tests/fleet_rollout_test and `tools/bench fleet`: each
# host is a network namespace with its own sshd on the namespace's address (10.77.I.2; this side
# of its veth is 10.77.I.1), its own snapd with three apps and traffic through both of its engines,
# and its own paths (FLEET_DIR/hI/sbin, bin, etc, run). Some hosts run snapd under a real systemd
# (tests/systemd.sh) booted for that host, which the install role (deploy/ansible/) sets up as on a
# real host; the others run it as a plain process this file starts. Ansible reaches every host over
# ssh, with keys made here and host keys it checks.
#
# Source it (after systemd.sh, netns.sh and wait.sh, which lib.sh sources), set the FLEET_*
# inputs, then:
#   fleet_up                 builds the fleet, installs snapd with install.yml, starts traffic
#   fleet_rollout BIN OUT    runs upgrade.yml with the release BIN, its report in OUT, its output
#                            in OUT.log; returns ansible-playbook's status
#   fleet_stop_traffic       ends every host's traffic and waits for the apps' verdicts
#   fleet_ctl I ARGS...      snapctl on host I
#   fleet_down               takes it all down (call it on every exit path)
# Inputs: FLEET_DIR (a root-owned directory under /var/lib, not /tmp: a live upgrade runs only
# binaries under directories only root can change), FLEET_HOSTS, FLEET_SYSTEMD (the hosts
# under systemd, e.g. "1 4"; each systemd has cgroups of its own, tests/systemd.sh), FLEET_SLO_US, FLEET_ANSIBLE (deploy/ansible), FLEET_SNAPD,
# FLEET_SNAPCTL, FLEET_UDP_ECHO, FLEET_SNAP_TRAFFIC, FLEET_MEMIF_TRAFFIC, FLEET_RATE (frames/s
# per app stream).
# The inventory: FLEET_DIR/inventory.yml. Apps' verdicts: FLEET_DIR/hI-stream.log (memif_traffic
# through the echo engine) and hI-traffic.log (snap_traffic to udp_echo through the vswitch).

FLEET_TAG=${FLEET_TAG:-$$}
FLEET_PIDS=()
declare -A FLEET_SD FLEET_SD_UNSHARE FLEET_SD_DIR

fleet_ns() { echo "snapd-fl${FLEET_TAG}-h$1"; }
fleet_if() { echo "fl${FLEET_TAG}h$1"; }
fleet_addr() { echo "10.77.$1.2"; }
fleet_under_systemd() { [[ " $FLEET_SYSTEMD " == *" $1 "* ]]; }
fleet_ctl() {
  local i=$1
  shift
  "$FLEET_DIR/h$i/bin/snapctl" --socket="$FLEET_DIR/h$i/run/control.sock" --timeout_s=20 "$@"
}
# fleet_apps_attached I N: host I's snapd has N apps attached.
fleet_apps_attached() { [ "$(fleet_ctl "$1" apps | grep -c ' yes ')" -eq "$2" ]; }
# fleet_in_host I CMD...: CMD in host I's network namespace (and, under systemd, in its systemd's
# mount and PID namespaces: /run is that systemd's own). FLEET_PREFIX is the command that does so.
fleet_in_host() {
  _fleet_prefix "$1"
  shift
  "${FLEET_PREFIX[@]}" "$@"
}
_fleet_prefix() {
  if fleet_under_systemd "$1"; then
    # nsenter opens the namespace's file before it enters the mount namespace, which hides it.
    FLEET_PREFIX=(nsenter -t "${FLEET_SD[$1]}" -m -p -u --net="/run/netns/$(fleet_ns "$1")")
  else
    FLEET_PREFIX=(ip netns exec "$(fleet_ns "$1")")
  fi
}

_fleet_bg() {  # LOG CMD...: in the background, remembered for fleet_down
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  FLEET_PIDS+=($!)
}

_fleet_ssh_setup() {
  local d=$FLEET_DIR/ssh
  mkdir -p -m 0700 "$d"
  ssh-keygen -q -t ed25519 -N '' -C fleet-controller -f "$d/id" >/dev/null
  cp "$d/id.pub" "$d/authorized_keys"
  : >"$d/known_hosts"
  cat >"$d/sshd_config" <<EOF
Port 22
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp internal-sftp
MaxStartups 64
MaxSessions 64
LogLevel ERROR
EOF
}

_fleet_host_up() {  # I
  local i=$1 h=$FLEET_DIR/h$1 ns if
  ns=$(fleet_ns "$i")
  if=$(fleet_if "$i")
  # Called as `_fleet_host_up I || return 1`, so set -e does not hold in here: each step says.
  veth_host "$ns" "$if" "${if}n" "$(fleet_addr "$i")/24" || return 1
  ip addr add "10.77.$i.1/24" dev "$if" || return 1
  mkdir -p -m 0755 "$h" "$h/run" || return 1
  ssh-keygen -q -t ed25519 -N '' -C "fleet-h$i" -f "$h/ssh_host_key" >/dev/null || return 1
  echo "$(fleet_addr "$i") $(cut -d' ' -f1,2 "$h/ssh_host_key.pub")" >>"$FLEET_DIR/ssh/known_hosts"
  # Each host's snapd: a vswitch serving udp_echo (app 1) and snap_traffic (app 2), an echo engine
  # serving memif_traffic (app 3).
  cat >"$FLEET_DIR/h$i.textproto" <<EOF
engines { name: "sw0" kind: "vswitch" }
engines { name: "echo0" kind: "echo" }
apps { id: 1 mac: "02:00:00:77:$(printf %02x "$i"):01" ipv4: "10.0.0.1" engine: "sw0" }
apps { id: 2 mac: "02:00:00:77:$(printf %02x "$i"):02" ipv4: "10.0.0.2" engine: "sw0" }
apps { id: 3 mac: "02:00:00:77:$(printf %02x "$i"):03" ipv4: "10.0.0.3" engine: "echo0" }
eal { memory_mb: 128 }
EOF
  if fleet_under_systemd "$i"; then
    printf '[Unit]\nDescription=a fleet host (tests/fleet.sh)\n' >"$h/fleet-host.target"
    if ! boot_systemd "$h/systemd" "$h/fleet-host.target"; then
      kill_systemd
      return 1
    fi
    FLEET_SD[$i]=$SD
    FLEET_SD_UNSHARE[$i]=$_sd_unshare
    FLEET_SD_DIR[$i]=$_sd_dir
    SD="" _sd_unshare="" _sd_dir=""
  fi
  fleet_in_host "$i" mkdir -p -m 0755 /run/sshd || return 1
  _fleet_prefix "$i"
  _fleet_bg "$h/sshd.log" "${FLEET_PREFIX[@]}" /usr/sbin/sshd -D -e -f "$FLEET_DIR/ssh/sshd_config" \
    -h "$h/ssh_host_key" -o "ListenAddress=$(fleet_addr "$i")"
}

# The inventory Ansible is given: every host with its paths and how snapd runs on it.
_fleet_inventory() {
  local i
  {
    echo "snapd:"
    echo "  vars:"
    echo "    ansible_user: root"
    echo "    ansible_ssh_private_key_file: $FLEET_DIR/ssh/id"
    echo "    ansible_ssh_common_args: >-"
    echo "      -F /dev/null -o UserKnownHostsFile=$FLEET_DIR/ssh/known_hosts"
    echo "      -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    echo "    snapd_blackout_slo_us: $FLEET_SLO_US"
    echo "  hosts:"
    for i in $(seq "$FLEET_HOSTS"); do
      echo "    h$i:"
      echo "      ansible_host: $(fleet_addr "$i")"
      echo "      snapd_sbin_dir: $FLEET_DIR/h$i/sbin"
      echo "      snapd_bin_dir: $FLEET_DIR/h$i/bin"
      echo "      snapd_config_dir: $FLEET_DIR/h$i/etc"
      echo "      snapd_run_dir: $FLEET_DIR/h$i/run"
      echo "      snapd_config: $FLEET_DIR/h$i.textproto"
      echo "      snapd_service_manager: $(fleet_under_systemd "$i" && echo systemd || echo none)"
    done
  } >"$FLEET_DIR/inventory.yml"
}

# ansible-playbook PLAYBOOK ARGS... with the fleet's inventory, its files kept in FLEET_DIR.
fleet_playbook() {
  local playbook=$1
  shift
  ANSIBLE_CONFIG="$FLEET_ANSIBLE/ansible.cfg" ANSIBLE_HOME="$FLEET_DIR/ansible" \
    ANSIBLE_LOCAL_TEMP="$FLEET_DIR/ansible/tmp" ANSIBLE_REMOTE_TEMP="$FLEET_DIR/ansible/remote" \
    ANSIBLE_SSH_CONTROL_PATH_DIR="$FLEET_DIR/ansible/cp" ANSIBLE_FORKS=16 ANSIBLE_NOCOLOR=1 \
    ansible-playbook -i "$FLEET_DIR/inventory.yml" "$FLEET_ANSIBLE/$playbook" "$@"
}

fleet_up() {
  local i h
  _fleet_ssh_setup
  for i in $(seq "$FLEET_HOSTS"); do _fleet_host_up "$i" || return 1; done
  _fleet_inventory
  for i in $(seq "$FLEET_HOSTS"); do
    wait_for 20 "host $i's sshd" ip netns exec "$(fleet_ns "$i")" \
      bash -c "exec 3<>/dev/tcp/$(fleet_addr "$i")/22" || return 1
  done
  fleet_playbook install.yml -e "snapd_binary=$FLEET_SNAPD" -e "snapctl_binary=$FLEET_SNAPCTL" \
    >"$FLEET_DIR/install.log" 2>&1 || { tail -30 "$FLEET_DIR/install.log" >&2; return 1; }
  for i in $(seq "$FLEET_HOSTS"); do
    h=$FLEET_DIR/h$i
    # A host without systemd: its own supervisor would start snapd so.
    fleet_under_systemd "$i" || _fleet_bg "$h/snapd.log" ip netns exec "$(fleet_ns "$i")" \
      "$h/sbin/snapd" --config="$h/etc/snapd.textproto" --run_dir="$h/run"
  done
  for i in $(seq "$FLEET_HOSTS"); do
    wait_for 30 "host $i's snapd" fleet_ctl "$i" health || return 1
  done
  for i in $(seq "$FLEET_HOSTS"); do
    h=$FLEET_DIR/h$i
    _fleet_bg "$h-echo.log" "$FLEET_UDP_ECHO" --socket="$h/run/memif.sock" --id=1
  done
  for i in $(seq "$FLEET_HOSTS"); do
    wait_for 20 "host $i's udp_echo" grep -q attached "$FLEET_DIR/h$i-echo.log" || return 1
  done
  for i in $(seq "$FLEET_HOSTS"); do
    h=$FLEET_DIR/h$i
    _fleet_bg "$h-traffic.log" "$FLEET_SNAP_TRAFFIC" --socket="$h/run/memif.sock" --id=2 \
      --dst_ip=10.0.0.1 --frames=1000000000 --window=8 --rate="$FLEET_RATE" \
      --stop_file="$FLEET_DIR/stop" --timeout_s=60
    _fleet_bg "$h-stream.log" "$FLEET_MEMIF_TRAFFIC" --socket="$h/run/memif.sock" --id=3 \
      --frames=1000000000 --window=8 --rate="$FLEET_RATE" --stop_file="$FLEET_DIR/stop" \
      --timeout_s=60
  done
  for i in $(seq "$FLEET_HOSTS"); do
    wait_for 20 "host $i's apps attached" fleet_apps_attached "$i" 3 || return 1
  done
}

fleet_rollout() {  # BINARY REPORT_DIR
  fleet_playbook upgrade.yml -e "snapd_new_binary=$1" -e "snapd_report_dir=$2" >"$2.log" 2>&1
}

# Ends the apps' streams (they stop sending, wait for what is in flight, and print their verdicts).
fleet_stop_traffic() {
  local i
  touch "$FLEET_DIR/stop"
  for i in $(seq "$FLEET_HOSTS"); do
    wait_for 90 "host $i's apps to finish" bash -c \
      "grep -q 'seconds' '$FLEET_DIR/h$i-traffic.log' && grep -q 'seconds' '$FLEET_DIR/h$i-stream.log'" || true
  done
}

fleet_down() {
  local p i
  for p in "${FLEET_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${FLEET_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  FLEET_PIDS=()
  # Ansible's ssh masters (ControlPersist) and anything run from the fleet's files (snapds a live
  # upgrade started, which are no children of ours).
  pkill -9 -f "$FLEET_DIR/ansible/cp" 2>/dev/null || true
  pkill -9 -f "^$FLEET_DIR/" 2>/dev/null || true
  # The systemds, last booted first (each removes the cgroups made since it booted).
  for i in $(printf '%s\n' "${!FLEET_SD[@]}" | sort -rn); do
    SD=${FLEET_SD[$i]} _sd_unshare=${FLEET_SD_UNSHARE[$i]} _sd_dir=${FLEET_SD_DIR[$i]}
    kill_systemd
    unset "FLEET_SD[$i]"
  done
  for i in $(seq "${FLEET_HOSTS:-0}"); do
    # What still runs in a host (sshd's sessions): a namespace lives on while a process holds it.
    ip netns pids "$(fleet_ns "$i")" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip link del "$(fleet_if "$i")" 2>/dev/null || true
    ip netns del "$(fleet_ns "$i")" 2>/dev/null || true
  done
}
