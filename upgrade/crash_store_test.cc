// What a crash store gives back is checked like app input: a store holding what snapd kept of two
// apps is tampered with as an app (or a broken snapd) could while no snapd runs, and the next
// snapd's side (Recover, then MemifServer::AdoptConnection) must drop the bad connection, say why,
// and bring the other back serving.
#include "upgrade/crash_store.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/memif_protocol.h"
#include "ipc/server.h"
#include "upgrade/handoff.pb.h"
#include "upgrade/protocol.h"

namespace snapd::upgrade {
namespace {

using memif::MemifClient;
using memif::MemifServer;

class CrashStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.socket_path = absl::StrCat("/tmp/snapd-crash-store-test-", getpid(), ".sock");
    options_.accept_any_id = true;
    auto a = MemifServer::Create(options_);
    ASSERT_TRUE(a.ok()) << a.status();
    old_ = std::move(*a);
    for (uint32_t id : {1u, 2u}) {
      std::thread t([&] {
        auto c = MemifClient::Connect({options_.socket_path, id});
        ASSERT_TRUE(c.ok()) << c.status();
        clients_[id] = std::move(*c);
      });
      while (!clients_.count(id)) old_->Poll(5);
      t.join();
    }
    // What the dead snapd had stored: the listener, a checkpoint, each app.
    StoredFd listener{"memif", {}};
    auto l = old_->ExportListener();
    ASSERT_TRUE(l.ok());
    listener.fd = std::move(*l);
    store_.push_back(std::move(listener));
    store_.push_back(Checkpoint(1));
    for (uint32_t id : {1u, 2u}) {
      auto h = old_->ExportConnection(id);
      ASSERT_TRUE(h.ok()) << h.status();
      auto entries = AppStoreEntries(std::move(*h));
      ASSERT_TRUE(entries.ok()) << entries.status();
      for (StoredFd& e : *entries) store_.push_back(std::move(e));
    }
    // kill -9: the old server's copies close, nothing is said to the apps.
    old_->Relinquish();
    old_.reset();
  }

  void TearDown() override { unlink(options_.socket_path.c_str()); }

  static StoredFd Checkpoint(uint64_t generation) {
    wire::Checkpoint cp;
    cp.set_generation(generation);
    auto fd = SealedMemfd(cp.SerializeAsString());
    EXPECT_TRUE(fd.ok());
    return {absl::StrCat("config.", generation), std::move(*fd)};
  }

  StoredFd* Find(const std::string& name) {
    for (StoredFd& s : store_) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  wire::MemifConnection Description(uint32_t id) {
    auto bytes = ReadSealedMemfd(Find(absl::StrCat("app", id, ".conn"))->fd.get(), 1 << 16);
    wire::MemifConnection c;
    EXPECT_TRUE(bytes.ok() && c.ParseFromString(*bytes));
    return c;
  }

  void SetDescription(uint32_t id, const std::string& bytes) {
    auto fd = SealedMemfd(bytes);
    ASSERT_TRUE(fd.ok());
    Find(absl::StrCat("app", id, ".conn"))->fd = std::move(*fd);
  }

  // The next snapd: recovers the store and adopts what it gives; returns the adoption's status of
  // each app it got that far.
  std::map<uint32_t, absl::Status> Restart() {
    recovered_ = Recover(std::move(store_));
    store_.clear();
    auto b = MemifServer::Adopt(options_, std::move(recovered_.memif_listener));
    EXPECT_TRUE(b.ok()) << b.status();
    new_ = std::move(*b);
    std::map<uint32_t, absl::Status> adopted;
    for (memif::ConnectionHandoff& h : recovered_.connections) {
      const uint32_t id = h.id;
      adopted[id] = new_->AdoptConnection(std::move(h));
    }
    return adopted;
  }

  // A frame from app `id` comes back echoed by the new server.
  bool Echoes(uint32_t id) {
    MemifClient& c = *clients_[id];
    uint8_t buf[64] = {};
    memcpy(buf, &id, 4);
    memif::Frame f{buf, 64};
    if (c.tx(0).Transmit(&f, 1) != 1) return false;
    for (int spins = 0; spins < 100000; ++spins) {
      for (memif::Connection* conn : new_->connections()) {
        memif::Frame frames[32];
        uint16_t got = conn->rx(0).Receive(frames, 32);
        conn->tx(0).Transmit(frames, got);
        conn->rx(0).Release();
      }
      memif::Frame back[32];
      uint16_t n = c.rx(0).Receive(back, 32);
      c.rx(0).Release();
      if (n > 0) return true;
    }
    return false;
  }

  // What app `id` hears of its connection: "" while it stands.
  std::string Heard(uint32_t id) {
    absl::Status s;
    for (int i = 0; i < 2000 && s.ok(); ++i) {
      s = clients_[id]->CheckControl();
      if (s.ok()) usleep(1000);
    }
    return std::string(s.message());
  }

  std::string Dropped() const { return absl::StrJoin(recovered_.dropped, "; "); }

  memif::ServerOptions options_;
  std::unique_ptr<MemifServer> old_, new_;
  std::map<uint32_t, std::unique_ptr<MemifClient>> clients_;
  std::vector<StoredFd> store_;
  Recovered recovered_;
};

TEST_F(CrashStoreTest, EveryAppComesBackServing) {
  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_FALSE(recovered_.crash_loop);
  ASSERT_EQ(adopted.size(), 2u) << Dropped();
  for (auto& [id, status] : adopted) EXPECT_TRUE(status.ok()) << id << ": " << status;
  EXPECT_TRUE(recovered_.dropped.empty()) << Dropped();
  ASSERT_TRUE(recovered_.checkpoint.has_value());
  EXPECT_EQ(recovered_.checkpoint->generation(), 1u);
  EXPECT_TRUE(Echoes(1));
  EXPECT_TRUE(Echoes(2));
  EXPECT_TRUE(clients_[1]->CheckControl().ok());
  EXPECT_TRUE(clients_[2]->CheckControl().ok());
}

// Another process's connection under app 1's name (its peer is not the process that attached).
TEST_F(CrashStoreTest, AForeignControlSocketIsRefused) {
  std::string path = options_.socket_path + ".foreign";
  UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener.get(), 1), 0);
  pid_t child = fork();
  if (child == 0) {
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    _exit(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : 1);
  }
  UniqueFd foreign(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  int status = 0;
  waitpid(child, &status, 0);
  unlink(path.c_str());
  ASSERT_TRUE(foreign);
  Find("app1.0")->fd = std::move(foreign);

  std::map<uint32_t, absl::Status> adopted = Restart();
  ASSERT_EQ(adopted.size(), 2u) << Dropped();
  EXPECT_NE(adopted[1].message().find("control socket's peer is pid"), std::string::npos)
      << adopted[1];
  EXPECT_TRUE(adopted[2].ok()) << adopted[2];
  EXPECT_TRUE(Echoes(2));
  // App 1's own socket is closed with the store that held it: it hears that much.
  EXPECT_NE(Heard(1), "");
}

TEST_F(CrashStoreTest, AControlFdThatIsNotASocketIsRefused) {
  auto memfd = SealedMemfd("not a socket");
  ASSERT_TRUE(memfd.ok());
  Find("app2.0")->fd = std::move(*memfd);
  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_NE(adopted[2].message().find("not a Unix socket"), std::string::npos) << adopted[2];
  EXPECT_TRUE(adopted[1].ok()) << adopted[1];
  EXPECT_TRUE(Echoes(1));
}

// A sealed memfd of the same size and contents, but not the app's: the description recorded
// which file each region was.
TEST_F(CrashStoreTest, ARegionThatIsAnotherFileIsRefused) {
  wire::MemifConnection c = Description(1);
  ASSERT_GT(c.region_fds_size(), 0);
  StoredFd* region = Find(absl::StrCat("app1.", c.region_fds(0)));
  const uint64_t size = c.region_sizes(0);
  std::string copy(size, '\0');
  ASSERT_EQ(pread(region->fd.get(), copy.data(), size, 0), static_cast<ssize_t>(size));
  auto other = SealedMemfd(copy);
  ASSERT_TRUE(other.ok());
  region->fd = std::move(*other);

  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_EQ(adopted.count(1), 0u);
  EXPECT_NE(Dropped().find("app 1: memif handoff: region 0 is not the file it was"),
            std::string::npos)
      << Dropped();
  EXPECT_TRUE(adopted[2].ok()) << adopted[2];
  EXPECT_TRUE(Echoes(2));
  EXPECT_NE(Heard(1), "");
}

// A description that says a region is larger than its memfd (which, sealed against shrinking,
// cannot have become smaller): mapping it would fault past the end.
TEST_F(CrashStoreTest, ARegionSmallerThanDescribedIsRefused) {
  wire::MemifConnection c = Description(2);
  c.set_region_sizes(0, c.region_sizes(0) + (1 << 20));
  SetDescription(2, c.SerializeAsString());
  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_NE(adopted[2].message().find("smaller than the"), std::string::npos) << adopted[2];
  EXPECT_TRUE(adopted[1].ok()) << adopted[1];
  EXPECT_TRUE(Echoes(1));
  // Refused at adoption: the app is told why.
  EXPECT_NE(Heard(2).find("smaller than the"), std::string::npos);
}

// The app moved the server's cursor of its receive ring while no server watched.
TEST_F(CrashStoreTest, GarbageCursorsAreRefused) {
  wire::MemifConnection c = Description(1);
  const wire::RingSpec& spec = c.c2s_rings(0);
  StoredFd* region = Find(absl::StrCat("app1.", c.region_fds(spec.region())));
  const uint64_t size = c.region_sizes(spec.region());
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, region->fd.get(), 0);
  ASSERT_NE(base, MAP_FAILED);
  auto* ring = reinterpret_cast<memif::RingHeader*>(static_cast<uint8_t*>(base) + spec.offset());
  ring->tail = static_cast<uint16_t>(ring->head + 20000);
  munmap(base, size);

  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_NE(adopted[1].message().find("ring cursors out of range"), std::string::npos)
      << adopted[1];
  EXPECT_TRUE(adopted[2].ok()) << adopted[2];
  EXPECT_TRUE(Echoes(2));
  EXPECT_NE(Heard(1).find("ring cursors out of range"), std::string::npos);
}

TEST_F(CrashStoreTest, AGarbledOrIncompleteConnectionIsDroppedAndNamed) {
  SetDescription(1, "\xff\xff garbage");
  // App 2's last eventfd: the manager drops an fd whose app hung up while no snapd ran.
  wire::MemifConnection c = Description(2);
  const std::string last = absl::StrCat("app2.", c.s2c_eventfds(c.s2c_eventfds_size() - 1));
  store_.erase(std::remove_if(store_.begin(), store_.end(),
                              [&](const StoredFd& s) { return s.name == last; }),
               store_.end());

  std::map<uint32_t, absl::Status> adopted = Restart();
  EXPECT_TRUE(adopted.empty());
  EXPECT_NE(Dropped().find("app 1: its description does not parse"), std::string::npos)
      << Dropped();
  EXPECT_NE(Dropped().find(absl::StrCat("app 2: ", last, " is not in the store")),
            std::string::npos)
      << Dropped();
  // Every name of theirs is removed from the store, and the listener still comes back.
  for (const char* name : {"app1.conn", "app1.0", "app2.conn", "app2.0"}) {
    EXPECT_NE(std::find(recovered_.stale.begin(), recovered_.stale.end(), name),
              recovered_.stale.end())
        << name;
  }
  EXPECT_NE(new_, nullptr);
}

// A snapd that died within a second of taking its apps back left its mark: the next drops what
// waits in the rings (MemifServer counts it), and takes the apps back all the same.
TEST_F(CrashStoreTest, AMarkLeftByARestartSaysCrashLoop) {
  auto marker = SealedMemfd("restarting");
  ASSERT_TRUE(marker.ok());
  store_.push_back({"restarting", std::move(*marker)});
  recovered_ = Recover(std::move(store_));
  store_.clear();
  EXPECT_TRUE(recovered_.crash_loop);
  EXPECT_TRUE(recovered_.dropped.empty()) << Dropped();
  EXPECT_EQ(recovered_.connections.size(), 2u);
}

// Checkpoints: the newest that reads whole wins; an unsealed or garbled one is dropped, and one
// name holding two fds is a store nothing here wrote.
TEST_F(CrashStoreTest, TheNewestWholeCheckpointWins) {
  store_.push_back(Checkpoint(2));
  auto garbled = SealedMemfd("\x08\x03\xff\xff\xff");  // generation 3, then garbage
  ASSERT_TRUE(garbled.ok());
  store_.push_back({"config.3", std::move(*garbled)});
  UniqueFd unsealed(memfd_create("checkpoint", MFD_CLOEXEC));
  wire::Checkpoint cp;
  cp.set_generation(4);
  const std::string bytes = cp.SerializeAsString();
  ASSERT_EQ(write(unsealed.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  store_.push_back({"config.4", std::move(unsealed)});
  store_.push_back({"control", UniqueFd(dup(Find("memif")->fd.get()))});
  store_.push_back({"control", UniqueFd(dup(Find("memif")->fd.get()))});

  std::map<uint32_t, absl::Status> adopted = Restart();
  ASSERT_TRUE(recovered_.checkpoint.has_value());
  EXPECT_EQ(recovered_.checkpoint->generation(), 2u);
  EXPECT_NE(Dropped().find("config.3: does not parse"), std::string::npos) << Dropped();
  EXPECT_NE(Dropped().find("config.4:"), std::string::npos) << Dropped();
  EXPECT_NE(Dropped().find("control: 2 fds under one name"), std::string::npos) << Dropped();
  EXPECT_FALSE(recovered_.control_listener);
  EXPECT_EQ(adopted.size(), 2u);
}

}  // namespace
}  // namespace snapd::upgrade
