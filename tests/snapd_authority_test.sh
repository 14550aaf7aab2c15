#!/usr/bin/env bash
# Authority on the control socket and over upgrades (SECURITY.md), with a throwaway user and group:
#  - a member of --control_group (supplementary or primary group) is an operator: reads, engines,
#    groups and apps work; upgrade is PERMISSION_DENIED, saying why, and the binary never runs;
#    a user outside the group is denied everything;
#  - root's upgrades refuse a binary someone else could change (a directory owned by the user, a
#    group-writable binary, a directory under /tmp) and flags off the allowlist, each with the
#    reason; a good upgrade still works and the new snapd keeps the tiers;
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
pid_of_snapd() { ctl --json info | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }

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
check "a flag off the allowlist is refused, named" \
  fails_with "PERMISSION_DENIED: new_args: --run_dir is not a flag the upgrade passes on" \
  ctl upgrade --binary="$WORK/snapd-b" --new_args=--run_dir=/home
check "...as is a flag with a value the new snapd would read a file from" \
  fails_with "new_args: --config is not a flag" ctl upgrade --binary="$WORK/snapd-b" --new_args=--config=/etc/shadow
check "snapd is the same process after every refusal" [ "$(pid_of_snapd)" = "$before" ]

check "root's upgrade to a good binary works" bash -c "ctl upgrade --binary='$WORK/snapd-b' | grep -q upgraded"
check "the new snapd is another process" [ "$(pid_of_snapd)" != "$before" ]
check "the new snapd's /proc/PID/exe is the binary checked" \
  bash -c "[ \"\$(readlink /proc/\$(ctl --json info | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pid\"])')/exe)\" = '$WORK/snapd-b' ]"
check "the new snapd keeps the tiers: an operator reads" bash -c "as_operator engines | grep -q vswitch0"
check "...and may not upgrade" fails_with "you are uid $uid in the control group" as_operator upgrade --binary="$WORK/snapd-a"

# --- run dir ------------------------------------------------------------------------------------
mkdir -m 755 "$WORK/userrun"
chown "$uid" "$WORK/userrun"
out=$(timeout 30 "$WORK/snapd-a" --run_dir="$WORK/userrun" 2>&1) && status=0 || status=$?
echo "  someone else's run dir: exit $status: $(printf '%s\n' "$out" | tail -1)"
check "a run dir owned by another user stops snapd at startup, with one line, non-zero" \
  bash -c "[ $status -ne 0 ] && [ $status -ne 124 ] && [[ \"\$1\" == *'snapd: run dir $WORK/userrun is owned by uid $uid, not snapd'* ]]" _ "$out"
check "...and nothing was made in it" [ -z "$(ls -A "$WORK/userrun")" ]
finish
