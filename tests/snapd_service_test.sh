#!/usr/bin/env bash
# snapd under a service manager (systemd's sd_notify protocol, $NOTIFY_SOCKET), with a stand-in
# for systemd's end of it: a datagram socket that records each message and who sent it. snapd says
# READY=1 once it serves; at a live upgrade the old snapd, the service's main process, says
# MAINPID=<the new one> before it exits (so systemd follows the service instead of ending it); the
# new one, stopped, says STOPPING=1.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
cp "$SNAPD" "$WORK/snapd-a"
cp "$SNAPD" "$WORK/snapd-b"

# Each message on a line: "<sender pid> <message, newlines as spaces>" (the pid from SO_PASSCRED,
# as systemd checks it for NotifyAccess=main).
start notify python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(struct.unpack("iII", d[:12])[0] for l, t, d in anc if t == socket.SCM_CREDENTIALS)
        out.write(f"{pid} {data.decode().strip().replace(chr(10), chr(32))}\n")
' "$WORK/notify.sock" "$WORK/messages"
wait_for 10 "the notify socket" test -S "$WORK/notify.sock"
export NOTIFY_SOCKET="$WORK/notify.sock"

start_snapd "$WORK/snapd-a"
old=$PID_snapd
wait_for 10 "READY=1" grep -q "READY=1" "$WORK/messages"
check "snapd says READY=1 itself once it serves" grep -q "^$old READY=1" "$WORK/messages"

since=$(ctl --json info | ctl_json 'd["serving_since_unix_ms"]')
ctl upgrade --binary="$WORK/snapd-b" | sed 's/^/  /'
new=$(ctl --json info | ctl_json 'd["pid"]')
check "the upgrade made a new process ($old -> $new)" [ "$new" != "$old" ]
ctl info | sed 's/^/  /'
check "info tells the service's lineage: serving since before, one upgrade, from pid $old" \
  json_check "(int(d['serving_since_unix_ms']), d['upgrades'], d['previous_pid']) == ($since, 1, $old)" < <(ctl --json info)
check "and snapctl info says so" bash -c "ctl info | grep -q '(1 live upgrade since; took over from pid $old)'"
wait_for 10 "MAINPID" grep -q "MAINPID=" "$WORK/messages"
check "the old snapd, the main process, names the new one: MAINPID=$new" \
  grep -q "^$old MAINPID=$new " "$WORK/messages"
# The upgrade runs its threads at a raised priority (nice -10); serving, they are back to normal.
check "every thread of the new snapd is back at the usual priority (nice $(ps -L -o nice= -p "$new" | sort -u | tr '\n' ' '))" \
  bash -c "[ \"\$(ps -L -o nice= -p $new | sort -u | tr -d ' ')\" = 0 ]"
check "the new snapd says nothing a NotifyAccess=main service manager would refuse" \
  bash -c "! grep -q '^$new READY' '$WORK/messages'"

kill -TERM "$new"
wait_for 10 "STOPPING=1" grep -q "STOPPING=1" "$WORK/messages"
check "the new snapd, stopping, says STOPPING=1" grep -q "^$new STOPPING=1" "$WORK/messages"
sed 's/^/  notify: /' "$WORK/messages"
finish
