#!/usr/bin/env bash
# The control API through snapctl against a real snapd: every RPC, with its bad inputs and the
# precise errors, apps added and removed live, and the control socket's credential checks
# (PERMISSION_DENIED for a caller of another uid, allowed for a member of the control group).
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
RUN="$RUN"
chmod 755 "$WORK"  # the other users of the credential checks below must reach the socket
# fails_with TEXT COMMAND...: the command exits non-zero with one line containing TEXT.
fails_with() {
  local want=$1; shift
  local out status=0
  out=$("$@" 2>&1) || status=$?
  [ "$status" -ne 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] && [[ "$out" == *"$want"* ]] ||
    { echo "  got (exit $status): $out" >&2; return 1; }
}

start_snapd "$SNAPD" --control_group=daemon --app=id=1,mac=02:00:00:00:80:01,ip=10.80.0.1

check "info names the version and the memif socket" bash -c "ctl info | grep -q 'memif socket  $RUN/memif.sock'"
check "the gRPC health service says SERVING" bash -c "ctl health | grep -qx SERVING"
check "server reflection lists the snapd.v1 service" bash -c "ctl services | grep -qx snapd.v1.Snapd"
check "info --json is JSON" json_check 'd["pid"] > 0' < <(ctl --json info)

# Engines.
check "a dedicated group on core 1" bash -c "ctl mode g1 dedicated --cores=1 | grep -q 'group g1: dedicated'"
check "engine create in it" bash -c "ctl engine create e1 echo --group=g1 | grep -q 'engine e1 (echo) created in group g1'"
check "engines lists it on the group's worker, pinned to core 1" bash -c "ctl engines | grep -qE '^e1 +echo +w-g1-0 +1 '"
check "a second engine does not fit a one-core dedicated group: FAILED_PRECONDITION" \
  fails_with "FAILED_PRECONDITION: dedicated mode needs a core per engine: 2 engines, 1 cores allowed" ctl engine create e9 echo --group=g1
check "an unknown group names the field" fails_with "INVALID_ARGUMENT: group: no group named 'zz'" ctl engine create e9 echo --group=zz
check "a bad mode names the field" fails_with "mode: 'turbo' is not dedicated, spreading or compacting" ctl mode g1 turbo
check "a core outside the machine names the field" fails_with "cores: 64 is not a core of this machine" ctl mode g1 spreading --cores=64
check "a bad SLO is refused" fails_with "--slo: 'fast' is not a duration" ctl mode g1 compacting --slo=fast
check "groups lists both groups" bash -c "ctl groups | grep -qE '^g1 +dedicated +1 ' && ctl groups | grep -qE '^default +spreading +any '"
check "duplicate engine: ALREADY_EXISTS" fails_with "ALREADY_EXISTS: an engine named 'e1' exists" ctl engine create e1 echo
check "unknown kind: NOT_FOUND with the known ones" fails_with "NOT_FOUND: unknown engine kind 'router'; known kinds: echo, pony, vswitch" ctl engine create e2 router
check "bad config names the field" fails_with "INVALID_ARGUMENT: burst: at most 256" ctl engine create e2 vswitch --config='burst: 999'
check "config that does not parse names the line" fails_with "line 1" ctl engine create e2 vswitch --config='bogus: 1'
check "destroying a busy engine: FAILED_PRECONDITION" fails_with "FAILED_PRECONDITION: engine 'vswitch0' still serves ports nic0/q0 apps 1" ctl engine destroy vswitch0
check "engine destroy" bash -c "ctl engine destroy e1 | grep -q 'engine e1 destroyed'"
check "destroying a missing engine: NOT_FOUND" fails_with "NOT_FOUND: no engine named 'e1'" ctl engine destroy e1
check "engines --json has one engine left" json_check 'len(d["engines"]) == 1' < <(ctl --json engines)

# Apps, added and removed live.
check "app add" bash -c "ctl app add 2 --mac=02:00:00:00:80:02 --ip=10.80.0.2 --secret=s | grep -q 'app 2 added'"
check "duplicate id" fails_with "ALREADY_EXISTS: id: id 2 used twice" ctl app add 2 --mac=02:00:00:00:80:09 --ip=10.80.0.9
check "duplicate MAC" fails_with "mac: 02:00:00:00:80:01 given to two apps (also app 1)" ctl app add 3 --mac=02:00:00:00:80:01 --ip=10.80.0.3
check "bad MAC names the field" fails_with "INVALID_ARGUMENT: mac: 'zz' is not a MAC" ctl app add 3 --mac=zz --ip=10.80.0.3
check "bad address names the field" fails_with "ipv4: '10.80.0' is not an IPv4 address" ctl app add 3 --mac=02:00:00:00:80:03 --ip=10.80.0
check "unknown engine names the field" fails_with "engine: no engine named 'nope'" ctl app add 3 --mac=02:00:00:00:80:03 --ip=10.80.0.3 --engine=nope
check "removing a missing app: NOT_FOUND" fails_with "NOT_FOUND: no app with id 9" ctl app remove 9
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=2 --secret=s
wait_for 10 "app 2 attached" grep -q "attached as 02:00:00:00:80:02 10.80.0.2" "$WORK/echo.log"
check "apps shows app 2 attached with its pid" \
  json_check "find(d['apps'], id=2, attached=True, pid=$PID_echo, app_name='udp_echo')" < <(ctl --json apps)
check "ports lists the app's port" bash -c "ctl ports | grep -qE '^app2 +vswitch0 +app '"
check "app remove" bash -c "ctl app remove 2 | grep -q 'app 2 removed'"
wait_for 10 "the removed app was told why" grep -q "removed by operator" "$WORK/echo.log"
check "stats --json has engines, ports, NICs and workers" \
  json_check 'd["engines"] and d["ports"] and d["nics"] and d["workers"]' < <(ctl --json stats)
check "top draws workers and engines" bash -c "ctl top --iterations=2 --interval=0.1 | grep -qE '^vswitch0 +default +spreading'"
check "usage errors are one line" fails_with "unknown command 'frobnicate'" ctl frobnicate

# Credentials. The socket is root:daemon 0660.
check "the control socket is mode 0660, group daemon" bash -c "[ \"\$(stat -c '%a %G' '$RUN/control.sock')\" = '660 daemon' ]"
check "a member of the control group may use it" \
  setpriv --reuid=4321 --regid=4321 --groups=1 "$SNAPCTL" --socket="$RUN/control.sock" info
chmod 0666 "$RUN/control.sock"  # even when the file lets anyone connect...
check "...a caller of another uid gets PERMISSION_DENIED" \
  fails_with "PERMISSION_DENIED: only root, snapd's own user and the control group may use snapd's control socket" \
  setpriv --reuid=4321 --regid=4321 --clear-groups "$SNAPCTL" --socket="$RUN/control.sock" info
wait_for 10 "the refusal is logged" grep -q "control: refused .* uid 4321" "$WORK/snapd.log"
finish
