#!/usr/bin/env bash
# fleet_bench: a release rolled across HOSTS (8) namespace hosts with Ansible (deploy/ansible/
# upgrade.yml over ssh; tests/fleet.sh builds the fleet: each host its own sshd, snapd, three apps
# and traffic through both engines; host 1 under a real systemd). Run by `tools/bench fleet [HOSTS]`.
#  1. the good rollout (release 2 everywhere), timed from ansible-playbook's start to its end;
#  2. a release that fails on host 2 (the second batch): the rollout must halt there, host 2 back
#     on release 2, the hosts after it untouched.
# The apps count what they lost across both (their own sequence numbers). Last line:
#   fleet hosts= wall_s= worst_blackout_us= app_frames_lost= halted_on_bad_host=yes
# worst_blackout_us: the good rollout's, every engine of every host (the SLO the gate held them to
# is on the line before). KEEP_WORK=1 keeps the run's files and says where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../tests/json.sh"
source "$here/../../tests/systemd.sh"
source "$here/../../tests/netns.sh"
source "$here/../../tests/wait.sh"
source "$here/../../tests/fleet.sh"
bin=$1
hosts=${2:-8}
[ "$(id -u)" -eq 0 ] || { echo "fleet_bench: needs root (namespaces, sshd, systemd)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p -m 0755 /var/lib/snapd-test
work=$(mktemp -d /var/lib/snapd-test/fleet-bench.XXXXXX)
cleanup() {
  fleet_down
  if [ -n "${KEEP_WORK:-}" ]; then echo "fleet_bench: files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

FLEET_DIR=$work
FLEET_HOSTS=$hosts
FLEET_SYSTEMD=1
# Every snapd, app and sshd of the fleet shares this machine's two cores with Ansible: blackouts
# here are a loaded host's. The playbook's default SLO is 5000 us.
FLEET_SLO_US=${FLEET_SLO_US:-20000}
FLEET_RATE=500
FLEET_ANSIBLE=$(cd "$here/../../deploy/ansible" && pwd)
FLEET_SNAPCTL=$bin/tools/snapctl
FLEET_UDP_ECHO=$bin/clients/udp_echo
FLEET_SNAP_TRAFFIC=$bin/clients/snap_traffic
FLEET_MEMIF_TRAFFIC=$bin/tools/memif_traffic
mkdir -p -m 0755 "$work/releases"
cp "$bin/snapd/snapd" "$work/releases/snapd-1"
cp "$bin/snapd/snapd" "$work/releases/snapd-2"
printf '\n#snapd-release=2 (fleet_bench)\n' >>"$work/releases/snapd-2"
cp "$work/releases/snapd-2" "$work/releases/snapd-3"
printf '\n#snapd-test-fault=slow@../fault-here\n' >>"$work/releases/snapd-3"
FLEET_SNAPD=$work/releases/snapd-1

t0=$SECONDS
fleet_up
echo "fleet of $hosts hosts up in $((SECONDS - t0)) s (host 1 under systemd)"

start=$(date +%s.%N)
fleet_rollout "$work/releases/snapd-2" "$work/report-good" && good=0 || good=$?
end=$(date +%s.%N)
wall=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
echo "== the good rollout (release 2), SLO $FLEET_SLO_US us: ansible-playbook exit $good, $wall s"
cat "$work/report-good/report.txt" 2>/dev/null || tail -30 "$work/report-good.log"

touch "$work/h2/fault-here"
fleet_rollout "$work/releases/snapd-3" "$work/report-bad" && bad=0 || bad=$?
echo "== a release that fails on host 2: ansible-playbook exit $bad"
cat "$work/report-bad/report.txt" 2>/dev/null || tail -30 "$work/report-bad.log"
halted=no
if [ "$bad" -ne 0 ] && json_check "(d['failed'] == ['h2'] and find(d['hosts'], host='h2')['result'] == 'rolled back'
    and d['not_reached'] == ['h%d' % i for i in range(3, $hosts + 1)])" <"$work/report-bad/report.json" 2>/dev/null; then
  halted=yes
fi

fleet_stop_traffic
lost=0
unclean=0
for i in $(seq "$hosts"); do
  for app in traffic stream; do
    n=$(grep -o 'lost=[0-9]*' "$work/h$i-$app.log" | head -1 | cut -d= -f2)
    [ -n "$n" ] || { unclean=$((unclean + 1)); n=0; }
    lost=$((lost + n))
    grep -q "lost=0 repeated=0 reordered=0 corrupt=0 seconds" "$work/h$i-$app.log" || unclean=$((unclean + 1))
  done
done
echo "apps: $((hosts * 2)) streams, $lost frame(s) lost, $unclean stream(s) not clean (lost, repeated, reordered or no verdict)"
worst=$(ctl_json 'd["worst_blackout_us"]' <"$work/report-good/report.json" 2>/dev/null || echo -1)
[ "$good" -eq 0 ] || worst=-1
echo "slo_us=$FLEET_SLO_US good_rollout_exit=$good"
echo "fleet hosts=$hosts wall_s=$wall worst_blackout_us=$worst app_frames_lost=$lost halted_on_bad_host=$halted"
