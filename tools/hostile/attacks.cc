// hostile_app's attacks through memif (see hostile_app.cc for the list).
#include "tools/hostile/attacks.h"

#include "tools/hostile/frames.h"

namespace hostile {

// Issue 9 item 2, write side: the s2c eventfd made blocking and saturated, interrupts unmasked,
// and udp_echo asked to answer, so that snapd's worker writes the eventfd.
int EventfdWrite() {
  if (!HaveEcho()) return Say("eventfd_write needs --dst_mac and --dst_ip"), 2;
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  int efd = app->s2c_eventfd();
  if (!ClearNonBlock(efd)) return Say(absl::StrCat("fcntl: ", strerror(errno))), 1;
  uint64_t max = 0xfffffffffffffffeull;
  if (::write(efd, &max, sizeof(max)) != sizeof(max)) {
    return Say(absl::StrCat("saturating the eventfd: ", strerror(errno))), 1;
  }
  __atomic_fetch_and(&app->s2c()->flags, static_cast<uint16_t>(~kRingFlagMaskInt),
                     __ATOMIC_SEQ_CST);
  Say("s2c eventfd: O_NONBLOCK cleared, counter at 0xfffffffffffffffe, interrupts unmasked");
  absl::Time until = Deadline();
  uint64_t sent = 0, replies = 0;
  while (absl::Now() < until && !g_stop) {
    if (!app->CheckControl().ok()) break;
    // Keep the mask clear (a well-behaved snapd never sets it, but be sure).
    __atomic_fetch_and(&app->s2c()->flags, static_cast<uint16_t>(~kRingFlagMaskInt),
                       __ATOMIC_SEQ_CST);
    if (SendToEcho(*app, "eventfd_write")) ++sent;
    replies += app->DrainRx();
    absl::SleepFor(absl::Milliseconds(10));
  }
  Say(absl::StrCat("eventfd_write: sent ", sent, " datagrams to udp_echo, ", replies,
                   " replies came back"));
  HoldUntil(*app, absl::Now());
  return 0;
}

// Issue 9 item 2, read side: snapd must never block reading an eventfd an app handed it. The c2s
// eventfd is made blocking and handed to snapd twice, by two connections (--id and --second_id),
// so that one kick wakes the worker through both and its second read finds the counter empty; a
// thread of ours also drains it right after each kick (the race the issue describes). After each
// kick a datagram to udp_echo, put on the ring without a kick, must come back: when it does not,
// the worker is stuck and we stop kicking (a kick would free it) and hold, silent.
int EventfdRead() {
  if (!HaveEcho()) return Say("eventfd_read needs --dst_mac and --dst_ip"), 2;
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  int efd = app->c2s_eventfd();
  RawAppOptions second = OptionsFromFlags();
  second.id = absl::GetFlag(FLAGS_second_id);
  second.share_c2s_eventfd = efd;
  auto twin = ConnectOrSay(std::move(second));
  if (!twin) Say("eventfd_read: the second connection failed; racing the drain alone");
  if (!ClearNonBlock(efd)) return Say(absl::StrCat("fcntl: ", strerror(errno))), 1;
  Say("c2s eventfd: O_NONBLOCK cleared, shared by two connections, drained by a thread of ours");
  // Shared with a thread that outlives this function (it is blocked in read when we exit).
  auto drained = std::make_shared<std::atomic<uint64_t>>(0);
  std::thread drainer([efd, drained] {
    uint64_t v;
    while (true) {
      if (::read(efd, &v, sizeof(v)) == sizeof(v)) drained->fetch_add(1);
    }
  });
  drainer.detach();  // blocked in read when we exit; the process ends it
  uint64_t dst_mac;
  uint32_t dst_ip;
  snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac);
  snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip);
  const std::string probe = UdpFrame(app->mac(), dst_mac, app->ip(), dst_ip, "eventfd_read");
  absl::Time until = Deadline();
  uint64_t kicks = 0, answered = 0;
  bool stuck = false;
  while (absl::Now() < until && !g_stop && !stuck) {
    if (!app->CheckControl().ok() || (twin && !twin->CheckControl().ok())) break;
    uint64_t one = 1;
    if (::write(efd, &one, sizeof(one)) == sizeof(one)) ++kicks;
    absl::SleepFor(absl::Milliseconds(5));
    if (!app->SendQuiet(probe)) app->DrainRx();
    absl::Time wait_until = absl::Now() + absl::Milliseconds(500);
    uint32_t got = 0;
    while (got == 0 && absl::Now() < wait_until) {
      got = app->DrainRx();
      if (got == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    if (got == 0) {
      stuck = true;
    } else {
      ++answered;
      absl::SleepFor(absl::Milliseconds(15));
    }
  }
  Say(absl::StrCat("eventfd_read: ", kicks, " kicks, ", drained->load(), " drained by us, ",
                   answered, " probes answered",
                   stuck ? "; the last probe was not answered: snapd's worker is stuck" : "",
                   "; holding ", absl::GetFlag(FLAGS_hold_s), " s"));
  HoldUntil(*app, absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_hold_s)));
  return 0;
}

// Issue 9 item 6: many connections that never get past hello, reopened as soon as snapd drops
// them. Run it as another uid than the victims.
int Idle() {
  const uint32_t want = absl::GetFlag(FLAGS_connections);
  const std::string path = absl::GetFlag(FLAGS_socket);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Say("socket path too long"), 2;
  memcpy(addr.sun_path, path.data(), path.size());
  std::vector<UniqueFd> conns(want);
  std::map<std::string, uint64_t> reasons;
  uint64_t opened = 0, failed = 0, dropped = 0;
  const int64_t gap_ns = 1000000000ll / std::max<uint32_t>(1, absl::GetFlag(FLAGS_connects_per_s));
  int64_t next_connect = 0;
  absl::Time until = Deadline();
  Say(absl::StrCat("idle: holding ", want, " connections that never send init (uid ", getuid(),
                   ")"));
  while (absl::Now() < until && !g_stop) {
    for (UniqueFd& c : conns) {
      if (c || snapd::MonotonicNs() < next_connect) continue;
      next_connect = snapd::MonotonicNs() + gap_ns;
      UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
          errno != EINPROGRESS) {
        ++failed;
        ++reasons[absl::StrCat("connect: ", strerror(errno))];
        continue;
      }
      ++opened;
      c = std::move(fd);
    }
    std::vector<pollfd> p;
    for (UniqueFd& c : conns) {
      if (c) p.push_back({c.get(), POLLIN, 0});
    }
    ::poll(p.data(), p.size(), 5);
    for (UniqueFd& c : conns) {
      if (!c) continue;
      while (true) {
        snapd::memif::Received r = snapd::memif::ReceiveMessage(c.get());
        if (r.kind == snapd::memif::Received::Kind::kWouldBlock) break;
        if (r.kind == snapd::memif::Received::Kind::kMessage &&
            r.msg.type == static_cast<uint16_t>(MessageType::kHello)) {
          continue;  // and never answer it
        }
        std::string why = r.kind == snapd::memif::Received::Kind::kMessage &&
                                  r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)
                              ? snapd::memif::FieldToString(r.msg.disconnect.string)
                              : "closed";
        ++reasons[why];
        ++dropped;
        c.reset();
        break;
      }
    }
  }
  size_t held = 0;
  for (UniqueFd& c : conns) held += c ? 1 : 0;
  std::vector<std::string> rs;
  for (const auto& [why, n] : reasons) rs.push_back(absl::StrCat(n, "x '", why, "'"));
  Say(absl::StrCat("idle: opened=", opened, " dropped_by_snapd=", dropped, " connect_failed=",
                   failed, " held_at_end=", held, " reasons: ", absl::StrJoin(rs, ", ")));
  return 0;
}

// Issue 9 item 6, the log: handshakes refused one after another (an id snapd does not know), as
// fast as snapd answers. Each refusal used to log a WARNING.
int BadInit() {
  const uint32_t count = absl::GetFlag(FLAGS_count);
  uint64_t refused = 0, other = 0;
  std::map<std::string, uint64_t> reasons;
  absl::Time until = Deadline();
  for (uint32_t i = 0; i < count && absl::Now() < until && !g_stop; ++i) {
    RawAppOptions o = OptionsFromFlags();
    o.id = 0x7fff0000u + i;
    RawApp app;
    absl::Status s = app.Connect(std::move(o));
    if (absl::IsPermissionDenied(s)) {
      ++refused;
    } else {
      ++other;
    }
    if (reasons.size() < 8) ++reasons[std::string(s.message())];
  }
  std::vector<std::string> rs;
  for (const auto& [why, n] : reasons) rs.push_back(absl::StrCat(n, "x '", why, "'"));
  Say(absl::StrCat("badinit: refused=", refused, " other=", other,
                   " reasons: ", absl::StrJoin(rs, ", ")));
  return 0;
}

// Issue 9 item 5: frames no app should ever get onto the vswitch, each to broadcast and to the
// victim, again and again for the duration.
int SpoofAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  uint64_t victim_mac = 0;
  uint32_t victim_ip = 0;
  snapd::ParseMac(absl::GetFlag(FLAGS_victim_mac), &victim_mac);
  if (!snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &victim_ip)) {
    snapd::ParseIpv4("10.85.0.2", &victim_ip);
  }
  std::vector<Spoof> frames = SpoofFrames(*app, MacOf("ff:ff:ff:ff:ff:ff"), victim_ip);
  if (victim_mac != 0) {
    for (Spoof& s : SpoofFrames(*app, victim_mac, victim_ip)) frames.push_back(std::move(s));
  }
  std::map<std::string, uint64_t> sent;
  absl::Time until = Deadline();
  while (absl::Now() < until && !g_stop) {
    if (!app->CheckControl().ok()) break;
    for (const Spoof& s : frames) {
      if (SendFrame(*app, s.frame)) ++sent[s.kind];
    }
    app->DrainRx();
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<std::string> parts;
  for (const auto& [k, n] : sent) parts.push_back(absl::StrCat(k, "=", n));
  Say(absl::StrCat("spoof: sent ", absl::StrJoin(parts, " ")));
  HoldUntil(*app, absl::Now());
  return 0;
}

// Issue 9 item 7: after connecting, the app overwrites its rings' cookies; the test then upgrades
// snapd. We hold on and say whether, and why, snapd detached us.
int CookieAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  __atomic_store_n(&app->c2s()->cookie, 0xbad0c00cu, __ATOMIC_RELEASE);
  __atomic_store_n(&app->s2c()->cookie, 0xbad0c00cu, __ATOMIC_RELEASE);
  Say("cookie: both ring cookies overwritten with 0xbad0c00c");
  HoldUntil(*app, Deadline());
  return 0;
}

// Issue 9 item 8: a head advanced over descriptors that all carry NEXT: a chain that never ends.
int ChainAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  RingHeader* ring = app->c2s();
  uint32_t n = absl::GetFlag(FLAGS_slots);
  if (n == 0 || n >= app->ring_size()) n = app->ring_size() - 1;
  uint16_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n; ++i) {
    uint16_t cur = static_cast<uint16_t>(head + i);
    Descriptor* d = &ring->desc[cur & (app->ring_size() - 1)];
    d->flags = kDescFlagNext;
    d->region = 1;
    d->offset = (cur & (app->ring_size() - 1)) * app->buffer_size();
    d->length = 64;
    memcpy(app->buffer(d->offset), "HOSTILE:chain;", 14);
  }
  __atomic_store_n(&ring->head, static_cast<uint16_t>(head + n), __ATOMIC_RELEASE);
  Say(absl::StrCat("chain: head advanced over ", n, " descriptors, every one with NEXT"));
  HoldUntil(*app, Deadline());
  return 0;
}

// Issue 9 ("an app that breaks the protocol is detached with a reason"): descriptors outside the
// regions (c2s), buffers offered outside the regions (s2c), a head moved past the ring size. One
// connection each; each must end with snapd detaching us.
int BadDescAttack() {
  if (!HaveEcho()) return Say("baddesc needs --dst_mac and --dst_ip"), 2;
  const double wait_s = absl::GetFlag(FLAGS_wait_s);
  int failures = 0;
  for (const std::string variant : {"c2s_outside", "s2c_outside", "head_past_size"}) {
    auto app = ConnectOrSay(OptionsFromFlags());
    if (!app) return 1;
    uint32_t size = app->ring_size();
    if (variant == "c2s_outside") {
      RingHeader* ring = app->c2s();
      uint16_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
      for (uint32_t i = 0; i < 32; ++i) {
        Descriptor* d = &ring->desc[static_cast<uint16_t>(head + i) & (size - 1)];
        d->flags = 0;
        // Alternately: a region that does not exist, and a buffer straddling the region's end.
        d->region = i % 2 == 0 ? 7 : 1;
        d->offset = i % 2 == 0 ? 0 : static_cast<uint32_t>(app->buffers_region_size() - 16);
        d->length = 1024;
      }
      __atomic_store_n(&ring->head, static_cast<uint16_t>(head + 32), __ATOMIC_RELEASE);
    } else if (variant == "s2c_outside") {
      RingHeader* ring = app->s2c();
      for (uint32_t i = 0; i < size; ++i) {
        ring->desc[i].region = 1;
        ring->desc[i].offset = static_cast<uint32_t>(app->buffers_region_size() + 4096);
      }
      SendToEcho(*app, "s2c_outside");  // the echo's answer makes snapd use an offered buffer
    } else {
      RingHeader* ring = app->c2s();
      uint16_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
      __atomic_store_n(&ring->head, static_cast<uint16_t>(tail + size + 7), __ATOMIC_RELEASE);
    }
    std::string why = app->AwaitDetach(wait_s);
    if (why.empty()) {
      Say(absl::StrCat("RESULT: baddesc/", variant, ": NOT detached within ", wait_s, " s"));
      app->Disconnect("hostile_app: next variant");
      ++failures;
    } else {
      Say(absl::StrCat("RESULT: baddesc/", variant, ": detached: ", why));
    }
    // Let snapd forget the id before the next variant attaches with it.
    absl::SleepFor(absl::Milliseconds(300));
  }
  return failures == 0 ? 0 : 3;
}

// Issue 9 item 9: a hugetlbfs memfd offered as a region. Exits 77 when this machine cannot make
// and map one (no MFD_HUGETLB, or no free huge page).
int HugetlbAttack() {
  constexpr uint64_t kSize = 2 << 20;
  UniqueFd fd(::memfd_create("hostile-huge", MFD_HUGETLB | MFD_ALLOW_SEALING | MFD_CLOEXEC));
  if (!fd) return Say(absl::StrCat("SKIP: memfd_create(MFD_HUGETLB): ", strerror(errno))), 77;
  if (::ftruncate(fd.get(), kSize) != 0) {
    return Say(absl::StrCat("SKIP: ftruncate hugetlb memfd: ", strerror(errno))), 77;
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return Say(absl::StrCat("SKIP: sealing a hugetlb memfd: ", strerror(errno))), 77;
  }
  void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return Say(absl::StrCat("SKIP: mapping a hugetlb memfd here: ", strerror(errno),
                            " (no free huge page?)")),
           77;
  }
  memset(p, 0, 64);
  ::munmap(p, kSize);
  RawAppOptions o = OptionsFromFlags();
  o.extra.push_back({std::move(fd), kSize});
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(o));
  if (!s.ok()) {
    Say(absl::StrCat("RESULT: refused: ", s.message()));
    return 0;
  }
  Say("RESULT: connected (a hugetlbfs region was accepted)");
  return 0;
}

// Issue 9 item 9: 16 sparse regions of 4 GiB each (the handshake's largest), all charged to snapd.
int BigRegionsAttack() {
  constexpr uint64_t kSize = uint64_t{1} << 32;
  RawAppOptions o = OptionsFromFlags();
  o.pad_regions_to = kSize;
  for (int i = 0; i < 14; ++i) {
    UniqueFd fd(::memfd_create("hostile-sparse", MFD_ALLOW_SEALING | MFD_CLOEXEC));
    if (!fd || ::ftruncate(fd.get(), kSize) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      return Say(absl::StrCat("cannot make a sparse memfd: ", strerror(errno))), 1;
    }
    o.extra.push_back({std::move(fd), kSize});
  }
  Say("bigregions: offering 16 regions of 4 GiB (64 GiB, sparse)");
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(o));
  if (!s.ok()) {
    Say(absl::StrCat("RESULT: refused: ", s.message()));
    return 0;
  }
  Say("RESULT: connected (64 GiB of regions accepted)");
  return 0;
}

// Found in review: fds snapd does not keep are closed by snapd, and closing the last reference to
// a TCP socket whose SO_LINGER is long, with unsent data, blocks for the linger time. Each of
// --count (at most 32) raw connections attaches such a socket to its init message, then we close
// ours. Then a semaphore eventfd (it would wake an idle worker on every sleep, for good) offered
// in add_ring. snapd must refuse both and go on serving (the test's checks after each class).
int FdTraps() {
  using snapd::memif::Received;
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.get(), 64) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Say(absl::StrCat("loopback listener: ", strerror(errno))), 1;
  }
  // The next message on `conn`, waiting up to 5 s.
  auto next = [](int conn) {
    Received r;
    for (int i = 0; i < 5000; ++i) {
      r = snapd::memif::ReceiveMessage(conn);
      if (r.kind != Received::Kind::kWouldBlock) break;
      ::poll(nullptr, 0, 1);
    }
    return r;
  };
  auto reason = [](const Received& r) -> std::string {
    if (r.kind != Received::Kind::kMessage) return "(no message)";
    if (r.msg.type != static_cast<uint16_t>(MessageType::kDisconnect)) {
      return absl::StrCat("(message type ", r.msg.type, ")");
    }
    return snapd::memif::FieldToString(r.msg.disconnect.string);
  };
  const uint32_t traps = std::min<uint32_t>(absl::GetFlag(FLAGS_count), 32);
  uint32_t refused = 0;
  std::string why;
  for (uint32_t i = 0; i < traps && !g_stop; ++i) {
    UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(tcp.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return Say(absl::StrCat("loopback connect: ", strerror(errno))), 1;
    }
    ::fcntl(tcp.get(), F_SETFL, O_NONBLOCK);
    static char junk[65536];
    while (::send(tcp.get(), junk, sizeof(junk), MSG_NOSIGNAL) > 0) {
    }
    linger lg{1, 3600};
    ::setsockopt(tcp.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    auto conn = snapd::memif::ConnectSeqpacket(absl::GetFlag(FLAGS_socket));
    if (!conn.ok()) return Say(absl::StrCat("memif socket: ", conn.status().message())), 1;
    Received hello = next(conn->get());
    if (hello.kind != Received::Kind::kMessage) {
      Say(absl::StrCat("RESULT: linger: snapd sent no hello within 5 s after ", i,
                       " lingering sockets (stuck closing one?)"));
      return 1;
    }
    absl::Status sent = snapd::memif::SendMessage(
        conn->get(),
        snapd::memif::MakeInit(absl::GetFlag(FLAGS_id), snapd::memif::InterfaceMode::kEthernet,
                               absl::GetFlag(FLAGS_secret), "hostile-linger"),
        tcp.get());
    if (!sent.ok()) return Say(absl::StrCat("init: ", sent.message())), 1;
    tcp.reset();  // snapd's copy is the last one now
    Received r = next(conn->get());
    if (r.kind == Received::Kind::kMessage &&
        r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
      ++refused;
      why = reason(r);
    }
  }
  Say(absl::StrCat("RESULT: linger: ", refused, " of ", traps, " inits with a lingering socket ",
                   "refused (", why, ")"));
  // A semaphore eventfd, past init and a good region.
  auto conn = snapd::memif::ConnectSeqpacket(absl::GetFlag(FLAGS_socket));
  if (!conn.ok()) return Say(absl::StrCat("memif socket: ", conn.status().message())), 1;
  (void)next(conn->get());  // hello
  (void)snapd::memif::SendMessage(
      conn->get(),
      snapd::memif::MakeInit(absl::GetFlag(FLAGS_id), snapd::memif::InterfaceMode::kEthernet,
                             absl::GetFlag(FLAGS_secret), "hostile-semaphore"));
  Received ack = next(conn->get());
  if (ack.kind != Received::Kind::kMessage ||
      ack.msg.type != static_cast<uint16_t>(MessageType::kAck)) {
    return Say(absl::StrCat("RESULT: semaphore: init not acked: ", reason(ack))), 1;
  }
  auto region = snapd::memif::MappedRegion::Create("hostile-sem", 1 << 16);
  if (!region.ok()) return Say("memfd"), 1;
  (void)snapd::memif::SendMessage(conn->get(), snapd::memif::MakeAddRegion(0, 1 << 16),
                                  region->fd());
  (void)next(conn->get());  // ack
  UniqueFd sem(::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC));
  (void)snapd::memif::SendMessage(conn->get(), snapd::memif::MakeAddRing(true, 0, 0, 0, 4),
                                  sem.get());
  Say(absl::StrCat("RESULT: semaphore: ", reason(next(conn->get()))));
  return 0;
}

}  // namespace hostile
