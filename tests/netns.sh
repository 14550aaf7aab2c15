# Network namespace plumbing without a harness: tests (through lib.sh's make_host, which also
# removes what it made) and benchmarks (which remove it themselves) source it.

# veth_host NS HOST_IF NS_IF ADDR/LEN: a namespace NS holding NS_IF (with ADDR), whose veth peer
# HOST_IF stays in this namespace, up, without an address, offloads off (so that a packet socket
# on it sees wire-sized frames).
veth_host() {
  local ns=$1 host_if=$2 ns_if=$3 addr=$4
  ip netns add "$ns"
  ip link add "$host_if" type veth peer name "$ns_if"
  ip link set "$ns_if" netns "$ns"
  # Without this the kernel hands the packet socket offload super-frames and partial checksums.
  ethtool -K "$host_if" tso off gso off gro off tx off >/dev/null
  ip netns exec "$ns" ethtool -K "$ns_if" tso off gso off gro off tx off >/dev/null
  ip link set "$host_if" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$addr" dev "$ns_if"
  ip netns exec "$ns" ip link set "$ns_if" up
}
