#include "upgrade/memif_handoff.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "upgrade/fd_channel.h"
#include "upgrade/handoff.pb.h"

namespace snapd::upgrade {
namespace {

void ToProto(const memif::RingSpec& r, wire::RingSpec* out) {
  out->set_region(r.region);
  out->set_offset(r.offset);
  out->set_log2_size(r.log2_size);
}

memif::RingSpec FromProto(const wire::RingSpec& r) {
  memif::RingSpec spec;
  spec.region = static_cast<uint16_t>(r.region());
  spec.offset = r.offset();
  spec.log2_size = static_cast<uint8_t>(r.log2_size());
  return spec;
}

}  // namespace

void ConnectionToWire(memif::ConnectionHandoff h, wire::MemifConnection* c,
                      std::vector<UniqueFd>* fds) {
  auto add = [&](UniqueFd fd) {
    fds->push_back(std::move(fd));
    return static_cast<uint32_t>(fds->size() - 1);
  };
  c->set_id(h.id);
  c->set_peer_name(h.peer_name);
  c->set_peer_if_name(h.peer_if_name);
  c->set_pid(h.cred.pid);
  c->set_uid(h.cred.uid);
  c->set_gid(h.cred.gid);
  c->set_control_fd(add(std::move(h.control)));
  for (size_t i = 0; i < h.region_fds.size(); ++i) {
    struct stat st {};
    ::fstat(h.region_fds[i].get(), &st);
    c->add_region_devs(st.st_dev);
    c->add_region_inodes(st.st_ino);
    c->add_region_sizes(h.region_sizes[i]);
    c->add_region_fds(add(std::move(h.region_fds[i])));
  }
  for (const memif::RingSpec& r : h.c2s_rings) ToProto(r, c->add_c2s_rings());
  for (const memif::RingSpec& r : h.s2c_rings) ToProto(r, c->add_s2c_rings());
  for (UniqueFd& e : h.c2s_eventfds) c->add_c2s_eventfds(add(std::move(e)));
  for (UniqueFd& e : h.s2c_eventfds) c->add_s2c_eventfds(add(std::move(e)));
}

absl::StatusOr<memif::ConnectionHandoff> ConnectionFromWire(const wire::MemifConnection& c,
                                                            std::vector<UniqueFd>* fds,
                                                            std::vector<bool>* used) {
  used->resize(fds->size(), false);
  absl::Status bad;
  auto take = [&](uint32_t index) -> UniqueFd {
    if (index >= fds->size() || (*used)[index]) {
      bad = absl::InvalidArgumentError(absl::StrCat("memif handoff: bad fd index ", index));
      return UniqueFd();
    }
    (*used)[index] = true;
    return std::move((*fds)[index]);
  };
  memif::ConnectionHandoff h;
  h.id = c.id();
  h.peer_name = c.peer_name();
  h.peer_if_name = c.peer_if_name();
  h.cred.pid = c.pid();
  h.cred.uid = c.uid();
  h.cred.gid = c.gid();
  h.control = take(c.control_fd());
  if (c.region_sizes_size() != c.region_fds_size()) {
    return absl::InvalidArgumentError("memif handoff: region sizes and fds differ");
  }
  const bool identified = c.region_inodes_size() > 0;
  if (identified && (c.region_inodes_size() != c.region_fds_size() ||
                     c.region_devs_size() != c.region_fds_size())) {
    return absl::InvalidArgumentError("memif handoff: region identities and fds differ");
  }
  for (int i = 0; i < c.region_fds_size(); ++i) {
    h.region_sizes.push_back(c.region_sizes(i));
    h.region_fds.push_back(take(c.region_fds(i)));
    struct stat st {};
    if (identified && h.region_fds.back() &&
        (::fstat(h.region_fds.back().get(), &st) != 0 || st.st_dev != c.region_devs(i) ||
         st.st_ino != c.region_inodes(i))) {
      return absl::InvalidArgumentError(
          absl::StrCat("memif handoff: region ", i, " is not the file it was (another memfd)"));
    }
  }
  for (const wire::RingSpec& r : c.c2s_rings()) h.c2s_rings.push_back(FromProto(r));
  for (const wire::RingSpec& r : c.s2c_rings()) h.s2c_rings.push_back(FromProto(r));
  for (uint32_t e : c.c2s_eventfds()) h.c2s_eventfds.push_back(take(e));
  for (uint32_t e : c.s2c_eventfds()) h.s2c_eventfds.push_back(take(e));
  if (!bad.ok()) return bad;
  return h;
}

absl::Status ExportMemifHandoff(const memif::MemifServer& server, wire::MemifHandoff* msg,
                                std::vector<UniqueFd>* fds) {
  absl::StatusOr<UniqueFd> listener = server.ExportListener();
  if (!listener.ok()) return listener.status();
  absl::StatusOr<std::vector<memif::ConnectionHandoff>> conns = server.ExportConnections();
  if (!conns.ok()) return conns.status();
  fds->push_back(std::move(*listener));
  msg->set_listener_fd(static_cast<uint32_t>(fds->size() - 1));
  for (memif::ConnectionHandoff& h : *conns) {
    ConnectionToWire(std::move(h), msg->add_connections(), fds);
  }
  return absl::OkStatus();
}

absl::Status SendMemifHandoff(int sock, const memif::MemifServer& server) {
  wire::MemifHandoff msg;
  std::vector<UniqueFd> fds;
  absl::Status status = ExportMemifHandoff(server, &msg, &fds);
  if (!status.ok()) return status;
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.get());
  return SendFdMessage(sock, msg.SerializeAsString(), raw);
  // Our exported copies close here; the peer holds its own.
}

absl::StatusOr<MemifHandoff> ReceiveMemifHandoff(int sock, absl::Duration timeout) {
  absl::StatusOr<FdMessage> raw = ReceiveFdMessage(sock, timeout);
  if (!raw.ok()) return raw.status();
  wire::MemifHandoff msg;
  if (!msg.ParseFromString(raw->bytes)) {
    return absl::InvalidArgumentError("memif handoff does not parse");
  }
  return TakeMemifHandoff(msg, &raw->fds);
}

absl::StatusOr<MemifHandoff> TakeMemifHandoff(const wire::MemifHandoff& msg,
                                              std::vector<UniqueFd>* fds) {
  std::vector<bool> used(fds->size(), false);
  MemifHandoff out;
  if (msg.listener_fd() >= fds->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("memif handoff: bad fd index ", msg.listener_fd()));
  }
  used[msg.listener_fd()] = true;
  out.listener = std::move((*fds)[msg.listener_fd()]);
  for (const wire::MemifConnection& c : msg.connections()) {
    absl::StatusOr<memif::ConnectionHandoff> h = ConnectionFromWire(c, fds, &used);
    if (!h.ok()) return h.status();
    out.connections.push_back(std::move(*h));
  }
  return out;
}

}  // namespace snapd::upgrade
