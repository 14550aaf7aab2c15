#include "upgrade/protocol.h"

#include "absl/strings/str_cat.h"
#include "upgrade/fd_channel.h"

namespace snapd::upgrade {

absl::Status Send(int channel, const wire::Envelope& e, const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.get());
  return SendFdMessage(channel, e.SerializeAsString(), raw);
}

absl::StatusOr<Received> Receive(int channel, absl::Duration timeout) {
  auto raw = ReceiveFdMessage(channel, timeout);
  if (!raw.ok()) return raw.status();
  Received r;
  if (!r.envelope.ParseFromString(raw->bytes)) {
    return absl::InvalidArgumentError("upgrade message does not parse");
  }
  r.fds = std::move(raw->fds);
  if (r.envelope.has_failed()) {
    return absl::AbortedError(absl::StrCat("the other snapd failed in ",
                                           r.envelope.failed().phase(), ": ",
                                           r.envelope.failed().reason()));
  }
  return r;
}

void NicCountersToWire(int index, const NicStats& s, wire::NicCounters* out) {
  out->set_index(index);
#define SNAPD_TO_WIRE(name, column, meaning) out->set_##name(s.name);
  SNAPD_NIC_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
}

NicStats NicCountersFromWire(const wire::NicCounters& in) {
  NicStats s;
#define SNAPD_FROM_WIRE(name, column, meaning) s.name = in.name();
  SNAPD_NIC_COUNTERS(SNAPD_FROM_WIRE)
#undef SNAPD_FROM_WIRE
  return s;
}

}  // namespace snapd::upgrade
