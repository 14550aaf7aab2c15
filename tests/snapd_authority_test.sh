#!/usr/bin/env bash
# Authority on the control socket and over upgrades (SECURITY.md), with a throwaway user and group:
#  - a member of --control_group (supplementary or primary group) is an operator: reads, engines,
#    groups and apps work; upgrade is PERMISSION_DENIED, saying why, and the binary never runs;
#    a user outside the group is denied everything, health and reflection included, and snapd
#    keeps at most 16 of their connections open;
#  - root's upgrades refuse a binary someone else could change (a directory owned by the user, a
#    group-writable binary, a directory under /tmp, a symlink in the user's directory), a script
#    whose #! line names its interpreter through the user's directory, names env or passes a path,
#    and flags off the allowlist, each with the reason; a good upgrade still works and the new
#    snapd keeps the tiers; a good script's interpreter runs from the fd snapd checked, on
#    /dev/fd/4, and the script's fd does not reach the new snapd;
#  - a run dir owned by the user stops snapd at startup with one line and a non-zero exit.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
tag=$$
U="snapdop$tag"
G="snapdctl$tag"
groupadd "$G"
useradd --no-create-home --no-user-group --gid users --groups "$G" --shell /usr/sbin/nologin "$U"
trap 'cleanup; _cleanup_net; userdel "$U" 2>/dev/null || true; groupdel "$G" 2>/dev/null || true' EXIT
uid=$(id -u "$U")
gid_ctl=$(getent group "$G" | cut -d: -f3)

# The user must reach the socket and snapctl: Bazel's runfiles are under root's home (0700).
chmod 711 "$WORK"
cp "$SNAPCTL" "$WORK/snapctl"
chmod 755 "$WORK/snapctl"
cp "$SNAPD" "$WORK/snapd-a"
cp "$SNAPD" "$WORK/snapd-b"
# as_operator / as_primary / as_outsider ARGS...: snapctl as the user, its control-group membership
# supplementary (from /etc/group), primary, or none.
as_operator() { setpriv --reuid="$uid" --regid=users --init-groups "$WORK/snapctl" --socket="$RUN/control.sock" "$@"; }
as_primary() { setpriv --reuid="$uid" --regid="$gid_ctl" --clear-groups "$WORK/snapctl" --socket="$RUN/control.sock" "$@"; }
as_outsider() { setpriv --reuid="$uid" --regid=users --clear-groups "$WORK/snapctl" --socket="$RUN/control.sock" "$@"; }
export -f as_operator as_primary as_outsider
export uid gid_ctl WORK
# fails_with TEXT COMMAND...: the command exits non-zero and says TEXT.
fails_with() {
  local want=$1; shift
  local out status=0
  out=$("$@" 2>&1) || status=$?
  [ "$status" -ne 0 ] && [[ "$out" == *"$want"* ]] || { echo "  got (exit $status): $out" >&2; return 1; }
}
pid_of_snapd() { ctl --json info | ctl_json 'd["pid"]'; }

start_snapd "$WORK/snapd-a" --control_group="$G" --app=id=1,mac=02:00:00:00:86:01,ip=10.86.0.1
before=$(pid_of_snapd)
check "the control socket is 0660, group $G" \
  bash -c "[ \"\$(stat -c '%a %G' '$RUN/control.sock')\" = '660 $G' ]"
check "the run dir is snapd's, closed to others" bash -c "[ \"\$(stat -c '%a %u' '$RUN')\" = '755 0' ]"

# --- operators ----------------------------------------------------------------------------------
check "an operator (supplementary group) lists engines" bash -c "as_operator engines | grep -q vswitch0"
check "an operator (primary group) reads info" bash -c "as_primary info | grep -q 'memif socket'"
check "an operator creates and destroys an engine" \
  bash -c "as_operator engine create op1 echo | grep -q created && as_operator engine destroy op1 | grep -q destroyed"
check "an operator changes a group's mode" bash -c "as_operator mode default compacting | grep -q compacting && as_operator mode default spreading >/dev/null"
check "an operator adds and removes an app" \
  bash -c "as_operator app add 2 --mac=02:00:00:00:86:02 --ip=10.86.0.2 | grep -q added && as_operator app remove 2 | grep -q removed"
check "someone outside the group cannot open the socket" \
  fails_with "Permission denied" as_outsider engines
# Should the socket's mode ever let them in, the credentials checked at accept still keep them out.
chmod 666 "$RUN/control.sock"
check "...and is denied every RPC if they can" \
  fails_with "PERMISSION_DENIED: only root, snapd's own user and the control group" as_outsider engines
check "...health too: a refused caller does not learn that snapd is up" \
  fails_with "PERMISSION_DENIED: only root, snapd's own user and the control group" as_outsider health
check "...nor which services it has (reflection)" \
  fails_with "PERMISSION_DENIED: only root, snapd's own user and the control group" as_outsider services
# 40 connections held open by the outsider: snapd closes the oldest beyond 16, so that they cannot
# use up its fds.
sockets_of() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
pid=$(pid_of_snapd)
sockets_before=$(sockets_of "$pid")
start hold setpriv --reuid="$uid" --regid=users --clear-groups python3 -c '
import socket, sys, time
held = []
for _ in range(40):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.setblocking(False)
    held.append(s)
closed = set()
deadline = time.time() + 20
while len(held) - len(closed) > 16 and time.time() < deadline:
    for i, s in enumerate(held):
        try:
            while s.recv(65536):
                pass
            closed.add(i)  # an orderly end
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.05)
print("open=%d" % (len(held) - len(closed)), flush=True)
time.sleep(60)
' "$RUN/control.sock"
wait_for 30 "the outsider's 40 connections to settle" grep -q "open=" "$WORK/hold.log"
echo "  outsider's connections: $(cat "$WORK/hold.log"); snapd's sockets $sockets_before -> $(sockets_of "$pid")"
check "...at most 16 of an outsider's 40 connections stay open" \
  bash -c "[ \$(grep -o 'open=[0-9]*' '$WORK/hold.log' | cut -d= -f2) -le 16 ]"
check "...and snapd holds at most two fds for each of those (gRPC's and its own)" \
  wait_for 10 "snapd's sockets to come down" \
  bash -c "[ \$(find /proc/$pid/fd -lname 'socket:*' | wc -l) -le $((sockets_before + 2 * 16)) ]"
kill "$PID_hold" 2>/dev/null || true
chmod 660 "$RUN/control.sock"
check "...and the refusal is logged with the uid" grep -q "control: refused pid [0-9]* uid $uid" "$WORK/snapd.log"

# The user's own "snapd": it would leave a mark if it ever ran.
mkdir "$WORK/home"
cat >"$WORK/home/x" <<EOF
#!/bin/sh
id -u >"$WORK/home/ran"
exec "$WORK/snapd-b" "\$@"
EOF
chmod 755 "$WORK/home/x"
chown -R "$uid" "$WORK/home"
check "an operator's upgrade is PERMISSION_DENIED, saying why and who" \
  fails_with "PERMISSION_DENIED: upgrade is for root and snapd's own user (uid 0): it runs a binary as snapd; you are uid $uid in the control group" \
  as_operator upgrade --binary="$WORK/home/x"
check "...also with the control group as primary group" \
  fails_with "PERMISSION_DENIED: upgrade is for root" as_primary upgrade --binary="$WORK/home/x"
check "...and the binary never ran" [ ! -e "$WORK/home/ran" ]
check "...and snapd logged the refusal" grep -q "control: refused upgrade to an operator (uid $uid in the control group)" "$WORK/snapd.log"

# --- root's upgrades: the binary and its flags ----------------------------------------------------
check "root's upgrade to the user's script: refused, the directory's owner named" \
  fails_with "PERMISSION_DENIED: directory $WORK/home is owned by uid $uid" ctl upgrade --binary="$WORK/home/x"
check "...and it never ran" [ ! -e "$WORK/home/ran" ]
mkdir -m 755 "$WORK/gw"
cp "$SNAPD" "$WORK/gw/snapd"
chmod 775 "$WORK/gw/snapd"
check "a group-writable binary is refused" \
  fails_with "PERMISSION_DENIED: binary $WORK/gw/snapd is writable by group" ctl upgrade --binary="$WORK/gw/snapd"
tmp_bin=$(mktemp -d /tmp/snapd-authority.XXXXXX)
cp "$SNAPD" "$tmp_bin/snapd"
check "a binary under /tmp is refused: sticky does not make it closed" \
  fails_with "PERMISSION_DENIED: directory /tmp is writable by group and others" ctl upgrade --binary="$tmp_bin/snapd"
rm -rf "$tmp_bin"
# A script whose interpreter is named through the user's directory: the kernel would look the #!
# path up again at exec, after any check, and a symlink swapped in there would run as root. snapd
# walks the path as written, refusing it, and never lets the kernel look it up.
mkdir -m 755 "$WORK/userbin" "$WORK/scripts"
ln -s /bin/sh "$WORK/userbin/sh"
ln -s "$WORK/snapd-b" "$WORK/userbin/snapd"
chown -hR "$uid" "$WORK/userbin"
script() {  # script NAME #!LINE: a root-owned script that would leave NAME.ran if it ever ran
  printf '%s\ntouch "%s"\nexec "%s" "$@"\n' "$2" "$WORK/scripts/$1.ran" "$WORK/snapd-b" >"$WORK/scripts/$1"
  chmod 755 "$WORK/scripts/$1"
}
script via-user "#!$WORK/userbin/sh"
script env "#!/usr/bin/env sh"
script path-arg "#!/bin/sh $WORK/home/x"
check "a script whose interpreter is named through the user's directory is refused, saying where" \
  fails_with "PERMISSION_DENIED: script $WORK/scripts/via-user: directory $WORK/userbin is owned by uid $uid" \
  ctl upgrade --binary="$WORK/scripts/via-user"
check "a script run by env (a PATH lookup) is refused" \
  fails_with "FAILED_PRECONDITION: script $WORK/scripts/env: #!/usr/bin/env looks the program up in PATH" \
  ctl upgrade --binary="$WORK/scripts/env"
check "a script whose #! line passes a path to its interpreter is refused" \
  fails_with "its #! line passes '$WORK/home/x' to /bin/sh: only one option" \
  ctl upgrade --binary="$WORK/scripts/path-arg"
check "a binary named through a symlink in the user's directory is refused, even to a good binary" \
  fails_with "PERMISSION_DENIED: directory $WORK/userbin is owned by uid $uid" \
  ctl upgrade --binary="$WORK/userbin/snapd"
check "...and none of them ran" bash -c "! ls '$WORK'/scripts/*.ran '$WORK/home/ran' 2>/dev/null"
check "a flag off the allowlist is refused, named" \
  fails_with "PERMISSION_DENIED: new_args: --run_dir is not a flag the upgrade passes on" \
  ctl upgrade --binary="$WORK/snapd-b" --new_args=--run_dir=/home
check "...as is a flag with a value the new snapd would read a file from" \
  fails_with "new_args: --config is not a flag" ctl upgrade --binary="$WORK/snapd-b" --new_args=--config=/etc/shadow
check "snapd is the same process after every refusal" [ "$(pid_of_snapd)" = "$before" ]

check "root's upgrade to a good binary works" bash -c "ctl upgrade --binary='$WORK/snapd-b' | grep -q upgraded"
check "the new snapd is another process" [ "$(pid_of_snapd)" != "$before" ]
check "the new snapd's /proc/PID/exe is the binary checked" \
  [ "$(readlink "/proc/$(pid_of_snapd)/exe")" = "$WORK/snapd-b" ]
check "the new snapd keeps the tiers: an operator reads" bash -c "as_operator engines | grep -q vswitch0"
check "...and may not upgrade" fails_with "you are uid $uid in the control group" as_operator upgrade --binary="$WORK/snapd-a"

# A good script: snapd runs its interpreter from the fd it checked, on the script's fd (so $0 is
# /dev/fd/4), and the new snapd closes that fd first thing.
printf '#!/bin/sh -e\necho "$0" >"%s"\nexec "%s" "$@"\n' "$WORK/scripts/gate.argv0" "$WORK/snapd-a" >"$WORK/scripts/gate"
chmod 755 "$WORK/scripts/gate"
check "root's upgrade to a good #! script works" bash -c "ctl upgrade --binary='$WORK/scripts/gate' | grep -q upgraded"
check "...its interpreter ran on the checked script's fd, not on a path the kernel looked up" \
  [ "$(cat "$WORK/scripts/gate.argv0" 2>/dev/null)" = /dev/fd/4 ]
new_pid=$(pid_of_snapd)
echo "  the new snapd's fds: $(ls /proc/"$new_pid"/fd | tr '\n' ' ')"
check "...and the script's fd did not reach the new snapd (/proc/$new_pid/fd)" \
  bash -c "! find '/proc/$new_pid/fd' -lname '$WORK/scripts/*' | grep -q ."
check "...which runs the binary the script named" [ "$(readlink "/proc/$new_pid/exe")" = "$WORK/snapd-a" ]

# --- run dir ------------------------------------------------------------------------------------
mkdir -m 755 "$WORK/userrun"
chown "$uid" "$WORK/userrun"
out=$(timeout 30 "$WORK/snapd-a" --run_dir="$WORK/userrun" 2>&1) && status=0 || status=$?
echo "  someone else's run dir: exit $status: $(printf '%s\n' "$out" | tail -1)"
check "a run dir owned by another user stops snapd at startup, with one line, non-zero" \
  bash -c "[ $status -ne 0 ] && [ $status -ne 124 ] && [[ \"\$1\" == *'snapd: run dir $WORK/userrun is owned by uid $uid, not snapd'* ]]" _ "$out"
check "...and nothing was made in it" [ -z "$(ls -A "$WORK/userrun")" ]
out=$(timeout 30 "$WORK/snapd-a" --run_dir="$WORK/userrun/snapd" 2>&1) && status=0 || status=$?
echo "  a run dir under someone else's directory: exit $status: $(printf '%s\n' "$out" | tail -1)"
check "a run dir under a directory another user owns stops snapd too, naming that directory" \
  bash -c "[ $status -ne 0 ] && [ $status -ne 124 ] && [[ \"\$1\" == *'run dir $WORK/userrun/snapd: directory $WORK/userrun is owned by uid $uid'* ]]" _ "$out"
check "...and nothing was made there" [ ! -e "$WORK/userrun/snapd" ]
finish
