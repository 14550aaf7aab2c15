#!/usr/bin/env bash
# What an app may send (issue 9, default-deny egress), through the real snapd:
#  - app 1 (IPv4 only) sends IPv6, a VLAN-tagged frame and LLDP, then a DHCP offer, GRE and IPv4
#    with a source route: every one is dropped and counted by reason in `snapctl stats`, and none
#    reaches the NIC;
#  - app 2 (given IPv6 addresses and VLAN 81) sends IPv6 and IPv4 from its addresses tagged with
#    VLAN 81: they reach the NIC; its router advertisements, untagged frames and frames tagged with
#    priority 5 are dropped and counted;
#  - --app and `snapctl app add` take ip6=, vlan= and uid=, check them with clear errors, and
#    `snapctl apps` shows them; an app registered for another uid is refused at attach.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
TRAFFIC=$(bin clients/snap_traffic)
SOCK="$RUN/memif.sock"
ME=$(id -u)
OTHER=$((ME + 1))

fails_with() {  # EXPECTED-TEXT COMMAND...: the command fails and says EXPECTED-TEXT
  local want=$1; shift
  local out
  if out=$("$@" 2>&1); then return 1; fi
  [[ "$out" == *"$want"* ]] || { echo "got: $out" >&2; return 1; }
}
check "--app with a bad VLAN gives one line" \
  fails_with "'5000' is not a VLAN id in 1..4094" "$SNAPD" --run_dir="$WORK/other" \
  --app=id=1,mac=02:00:00:00:81:01,ip=10.81.0.1,vlan=5000
check "--app with a bad uid gives one line" \
  fails_with "'bob' is not a uid" "$SNAPD" --run_dir="$WORK/other" \
  --app=id=1,mac=02:00:00:00:81:01,ip=10.81.0.1,uid=bob
check "--app with a bad ip6 gives one line" \
  fails_with "'fd00::81::1' is not an IPv6 address" "$SNAPD" --run_dir="$WORK/other" \
  --app=id=1,mac=02:00:00:00:81:01,ip=10.81.0.1,ip6=fd00::81::1

start_snapd "$SNAPD" --app=id=1,mac=02:00:00:00:81:01,ip=10.81.0.1 \
  --app=id=2,mac=02:00:00:00:81:02,ip=10.81.0.2,ip6=fd00:81::2,ip6=fe80::81:2,vlan=81 \
  --app=id=3,mac=02:00:00:00:81:03,ip=10.81.0.3,uid=$OTHER \
  --app=id=4,mac=02:00:00:00:81:04,ip=10.81.0.4,uid=$ME

# Frames as hex. IPv4/UDP from SRC (8 hex digits) to 10.81.0.255; IPv6/UDP from SRC (32) to ff02::1.
BCAST=ffffffffffff
UDP8=0009000700080000
ipv4() { echo "4500001c0000000040110000${1}0a5100ff$UDP8"; }
ipv6_udp() { echo "6000000000081140${1}ff020000000000000000000000000001$UDP8"; }
APP1=020000008101
APP2=020000008102
V6_APP1=fd000081000000000000000000000001
V6_APP2=fd000081000000000000000000000002
LL_APP2=fe800000000000000000000000810002
LLDP="0180c200000e${APP1}88cc$(printf '00%.0s' {1..46})"
# A router advertisement from fe80::81:2 to ff02::1 (ICMPv6 type 134, 16 bytes), tagged VLAN 81.
RA="333300000001${APP2}8100005186dd6000000000103aff${LL_APP2}ff020000000000000000000000000001"
RA+="86000000400007080000000000000000"

# App 1 was given IPv4 only.
"$TRAFFIC" --socket="$SOCK" --id=1 --frames=10 \
  --raw_hex="${BCAST}${APP1}86dd$(ipv6_udp $V6_APP1),${BCAST}${APP1}810000510800$(ipv4 0a510001),$LLDP" \
  >"$WORK/t1.log" 2>&1 || true
check "app 1 sent its 30 frames" grep -q "raw frames sent=30 of 30" "$WORK/t1.log"
counter() { ctl stats | grep -o "\b$1=[0-9]*" | head -1 | cut -d= -f2; }
counts_are() {  # NAME=VALUE...
  local kv
  for kv in "$@"; do [ "$(counter "${kv%%=*}")" = "${kv#*=}" ] || return 1; done
}
check "app 1's IPv6, tagged and LLDP frames were dropped and counted by reason" \
  wait_for 10 "egress counters" counts_are egress_drop_ipv6=10 egress_drop_vlan=10 \
  egress_drop_link_local=10
nic_tx() { ctl stats | awk '$1 == "nic0/q0" {print $4}'; }
check "none of them reached the NIC" [ "$(nic_tx)" = 0 ]

# App 2 was given fd00:81::2, fe80::81:2 and VLAN 81: it must tag, with priority 0.
"$TRAFFIC" --socket="$SOCK" --id=2 --frames=10 \
  --raw_hex="${BCAST}${APP2}8100005186dd$(ipv6_udp $V6_APP2),${BCAST}${APP2}810000510800$(ipv4 0a510002),$RA,${BCAST}${APP2}0800$(ipv4 0a510002),${BCAST}${APP2}8100a0510800$(ipv4 0a510002)" \
  >"$WORK/t2.log" 2>&1 || true
check "app 2 sent its 50 frames" grep -q "raw frames sent=50 of 50" "$WORK/t2.log"
check "app 2's router advertisements, untagged and priority 5 frames were dropped and counted" \
  wait_for 10 "RA and VLAN counters" counts_are egress_drop_ra=10 egress_drop_vlan=30
check "app 2's tagged IPv6 and IPv4 frames reached the NIC" [ "$(nic_tx)" = 20 ]
check "the other counters did not move" \
  counts_are egress_drop_ipv6=10 egress_drop_link_local=10

# App 1 again: a DHCP offer (UDP 67 -> 68), GRE, and IPv4 with a loose source route.
DHCP="${BCAST}${APP1}08004500001c00000000401100000a510001ffffffff0043004400080000"
GRE="${BCAST}${APP1}08004500001c00000000402f00000a5100010a5100ff0000080000000000"
LSRR="${BCAST}${APP1}08004700002400000000401100000a5100010a5100ff8307040a51006301$UDP8"
"$TRAFFIC" --socket="$SOCK" --id=1 --frames=10 --raw_hex="$DHCP,$GRE,$LSRR" \
  >"$WORK/t1b.log" 2>&1 || true
check "app 1 sent its 30 more frames" grep -q "raw frames sent=30 of 30" "$WORK/t1b.log"
check "the DHCP offers, GRE and source-routed frames were dropped and counted by reason" \
  wait_for 10 "server, tunnel and option counters" counts_are egress_drop_dhcp_server=10 \
  egress_drop_tunnel=10 egress_drop_ip_options=10
check "none of them reached the NIC" [ "$(nic_tx)" = 20 ]

# uid=: another uid's app is refused at attach, one's own attaches.
"$TRAFFIC" --socket="$SOCK" --id=3 --raw_hex="${BCAST}020000008103" --frames=1 \
  >"$WORK/t3.log" 2>&1 || true
check "an app registered for another uid is refused, named" \
  grep -q "interface id 3 belongs to uid $OTHER, not $ME" "$WORK/t3.log"
"$TRAFFIC" --socket="$SOCK" --id=4 --frames=1 \
  --raw_hex="${BCAST}0200000081040800$(ipv4 0a510004)" >"$WORK/t4.log" 2>&1 || true
check "an app registered for its own uid attaches" grep -q "raw frames sent=1 of 1" "$WORK/t4.log"

# snapctl shows and takes the new options.
check "snapctl apps shows app 2's VLAN and IPv6 addresses" \
  bash -c "ctl apps | grep -qE '^ +2 .* 81 +any .*fd00:81::2,fe80::81:2'"
check "snapctl apps shows app 3's uid" bash -c "ctl apps | grep -qE '^ +3 .* - +$OTHER '"
check "snapctl app add takes --ip6, --vlan and --uid" bash -c \
  "ctl app add 5 --mac=02:00:00:00:81:05 --ip=10.81.0.5 --ip6=fd00:81::5 --vlan=82 --uid=1234 && ctl --json apps | json_check \"find(d['apps'], id=5, ipv6=['fd00:81::5'], vlan=82, uid=1234)\""
check "snapctl app add: a bad VLAN names the field" \
  fails_with "INVALID_ARGUMENT: vlan: 4095 is not a VLAN id in 1..4094" \
  ctl app add 6 --mac=02:00:00:00:81:06 --ip=10.81.0.6 --vlan=4095
check "snapctl app add: a bad IPv6 address names the field" \
  fails_with "ipv6: 'zz' is not an IPv6 address" \
  ctl app add 6 --mac=02:00:00:00:81:06 --ip=10.81.0.6 --ip6=zz
check "snapctl app add: an IPv6 address of another app" \
  fails_with "ipv6: fd00:81::2 given to two apps (also app 2)" \
  ctl app add 6 --mac=02:00:00:00:81:06 --ip=10.81.0.6 --ip6=fd00:81::2
check "snapctl app add: a uid that is no number" \
  fails_with "--uid: 'bob' is not a uid" ctl app add 6 --mac=02:00:00:00:81:06 --ip=10.81.0.6 --uid=bob
finish
