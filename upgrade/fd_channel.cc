#include "upgrade/fd_channel.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "ipc/socket.h"

namespace snapd::upgrade {
namespace {

constexpr size_t kFdsPerPacket = 250;

// The header packet: magic, byte count, fd count.
struct Header {
  uint32_t magic;
  uint32_t bytes;
  uint32_t fds;
};
constexpr uint32_t kMagic = 0x534e4150;  // "SNAP"

absl::Status SendPacket(int sock, const void* data, size_t len, const int* fds, size_t nfds) {
  iovec iov{const_cast<void*>(data), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * nfds));
  if (nfds > 0) {
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(len)) {
    return absl::UnavailableError(absl::StrCat("send: ", n < 0 ? strerror(errno) : "short"));
  }
  return absl::OkStatus();
}

// Receives one packet into buf (up to cap bytes) and appends its fds.
absl::StatusOr<size_t> ReceivePacket(int sock, void* buf, size_t cap, std::vector<UniqueFd>* fds,
                                     absl::Time deadline) {
  while (true) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError("timed out waiting for the peer");
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) continue;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kFdsPerPacket));
    iovec iov{buf, cap};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    for (UniqueFd& fd : memif::TakeRightsFds(mh)) fds->push_back(std::move(fd));
    if (n < 0) return absl::UnavailableError(absl::StrCat("receive: ", strerror(errno)));
    if (n == 0) return absl::UnavailableError("the peer closed the channel");
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      return absl::InvalidArgumentError("oversized packet on the upgrade channel");
    }
    return static_cast<size_t>(n);
  }
}

}  // namespace

absl::Status SendFdMessage(int sock, const std::string& bytes, const std::vector<int>& fds) {
  if (bytes.size() > kMaxMessageBytes) return absl::InvalidArgumentError("message too large");
  if (fds.size() > kMaxFds) return absl::InvalidArgumentError("too many fds");
  Header h{kMagic, static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(fds.size())};
  std::string packet(reinterpret_cast<const char*>(&h), sizeof(h));
  packet += bytes;
  absl::Status status = SendPacket(sock, packet.data(), packet.size(), nullptr, 0);
  for (size_t i = 0; status.ok() && i < fds.size(); i += kFdsPerPacket) {
    size_t n = std::min(kFdsPerPacket, fds.size() - i);
    char one = 'f';
    status = SendPacket(sock, &one, 1, fds.data() + i, n);
  }
  return status;
}

absl::StatusOr<FdMessage> ReceiveFdMessage(int sock, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  FdMessage msg;
  std::string buf(sizeof(Header) + kMaxMessageBytes + 1, '\0');
  absl::StatusOr<size_t> n = ReceivePacket(sock, buf.data(), buf.size(), &msg.fds, deadline);
  if (!n.ok()) return n.status();
  Header h;
  if (*n < sizeof(h)) return absl::InvalidArgumentError("short header on the upgrade channel");
  memcpy(&h, buf.data(), sizeof(h));
  if (h.magic != kMagic || h.bytes != *n - sizeof(h) || h.fds > kMaxFds || !msg.fds.empty()) {
    return absl::InvalidArgumentError("malformed header on the upgrade channel");
  }
  msg.bytes = buf.substr(sizeof(h), h.bytes);
  while (msg.fds.size() < h.fds) {
    char one;
    size_t before = msg.fds.size();
    n = ReceivePacket(sock, &one, 1, &msg.fds, deadline);
    if (!n.ok()) return n.status();
    if (msg.fds.size() == before || msg.fds.size() > h.fds) {
      return absl::InvalidArgumentError("fd packet without the fds announced");
    }
  }
  return msg;
}

}  // namespace snapd::upgrade
