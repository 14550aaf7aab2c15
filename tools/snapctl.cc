// snapctl: the operator's command line over snapd's gRPC control API (snapd.v1).
//
//   snapctl [--socket=PATH] [--json] COMMAND ...
//     info                                   daemon version, uptime, sockets
//     health                                 the standard gRPC health check: SERVING or not
//     services                               the services the server reflects (server reflection)
//     engines                                engines and their counters
//     engine create NAME KIND [--config=TEXT] [--group=G]
//     engine destroy NAME
//     apps                                   registered app interfaces, attached or not
//     app add ID --mac=MAC --ip=ADDR [--ip6=A6,...] [--vlan=V] [--uid=U] [--secret=S] [--engine=E]
//     app remove ID
//     ports                                  NICs and every port with its counters
//     stats [--watch[=SECONDS]]              everything, redrawn in place with --watch
//     top [--interval=1] [--iterations=N]    live per-core and per-engine view, redrawn in place
//     upgrade --binary=PATH [--engines=a,b]  move snapd to a new binary live, engine by engine
//     groups                                 engine groups: mode, cores, SLO, workers, rebalances
//     mode GROUP dedicated|spreading|compacting [--cores=0,1] [--slo=200us]
//
// Read commands print aligned tables, or JSON with --json. An error is one line on stderr naming
// the problem, and a non-zero exit.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "control/proto/snapd.grpc.pb.h"
#include "control/stats_table.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, socket, "",
          "snapd's control socket (default $XDG_RUNTIME_DIR/snapd/control.sock, or "
          "/run/snapd/control.sock as root).");
ABSL_FLAG(bool, json, false, "Print read commands as JSON.");
ABSL_FLAG(std::string, config, "", "engine create: the engine's config in text format.");
ABSL_FLAG(std::string, group, "", "engine create: the engine group that places it.");
ABSL_FLAG(std::string, cores, "-",
          "mode: the group's cores, e.g. 0,1 (\"\" for any core; default: unchanged).");
ABSL_FLAG(std::string, slo, "", "mode: the group's queueing-delay SLO, e.g. 200us or 1ms.");
ABSL_FLAG(std::string, mac, "", "app add: the MAC the app is given.");
ABSL_FLAG(std::string, ip, "", "app add: the IPv4 address the app is given.");
ABSL_FLAG(std::vector<std::string>, ip6, {},
          "app add: IPv6 addresses the app may send from, comma-separated (none: no IPv6).");
ABSL_FLAG(uint32_t, vlan, 0,
          "app add: the VLAN id (1..4094) the app must tag every frame with (0: none).");
ABSL_FLAG(std::string, uid, "", "app add: the only uid that may attach as the app (default: any).");
ABSL_FLAG(std::string, secret, "", "app add: the memif secret the app must present.");
ABSL_FLAG(std::string, engine, "", "app add: the engine the app's port joins.");
ABSL_FLAG(double, watch, 0, "stats: redraw every this many seconds until interrupted.");
ABSL_FLAG(bool, follow, false,
          "events: after the log, print each event as it happens until interrupted (across live "
          "upgrades and restarts of snapd).");
ABSL_FLAG(double, interval, 1, "top: seconds between redraws.");
ABSL_FLAG(int, iterations, 0, "top: stop after this many redraws (0: until interrupted).");
ABSL_FLAG(double, timeout_s, 5, "Give up on a call after this many seconds.");
ABSL_FLAG(std::string, binary, "", "upgrade: the new snapd binary.");
ABSL_FLAG(std::vector<std::string>, new_args, {}, "upgrade: extra flags for the new snapd.");
ABSL_FLAG(std::vector<std::string>, engines, {},
          "upgrade: the order to move engines in (the others follow).");
ABSL_FLAG(std::string, port, "", "capture: the port (snapctl ports lists them: app1, nic0/q0).");
ABSL_FLAG(std::string, nic, "", "capture: every queue of this NIC (nic0).");
ABSL_FLAG(std::string, direction, "both",
          "capture: rx (what the ports received), tx (what snapd sent out of them) or both.");
ABSL_FLAG(uint64_t, count, 0, "capture: stop after this many frames (0: no limit).");
ABSL_FLAG(double, duration, 0, "capture: stop after this many seconds (0: no limit).");
ABSL_FLAG(uint32_t, snaplen, 0, "capture: bytes kept of each frame (0: all, up to 262144).");
ABSL_FLAG(std::string, filter, "", "capture: a tcpdump expression (pcap-filter(7)).");
ABSL_FLAG(uint32_t, buffer_kb, 0, "capture: each port's ring in snapd, KiB (0: 4096).");
ABSL_FLAG(std::string, output, "", "capture: the pcapng file to write; - for standard output.");

namespace snapd {
namespace {

std::string DefaultControlSocket() {
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (geteuid() == 0 || xdg == nullptr) return "/run/snapd/control.sock";
  return absl::StrCat(xdg, "/snapd/control.sock");
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    default:
      return "ERROR";
  }
}

int Usage(const std::string& why) {
  fprintf(stderr, "snapctl: %s (see snapctl --help)\n", why.c_str());
  return 2;
}

// Prints a proto as JSON.
void PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  printf("%s", out.c_str());
}

// A capture's chunks hold about 1 MiB of frames, and one frame may take them past it: room for
// a frame of the largest snap length on top.
grpc::ChannelArguments LargeMessages() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  return args;
}

// Where SIGINT and SIGTERM write while a capture runs (Cli::Capture).
int g_interrupt_fd = -1;

class Cli {
 public:
  explicit Cli(const std::string& socket)
      : socket_(socket),
        channel_(grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(),
                                           LargeMessages())),
        stub_(v1::Snapd::NewStub(channel_)) {}

  // Runs one RPC; on failure prints one line and returns false.
  template <typename Req, typename Resp, typename Method>
  bool Call(Method method, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(int64_t(absl::GetFlag(FLAGS_timeout_s) * 1000)));
    grpc::Status status = ((*stub_).*method)(&ctx, req, resp);
    if (status.ok()) return true;
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      fprintf(stderr, "snapctl: cannot reach snapd at %s: %s\n", socket_.c_str(),
              status.error_message().c_str());
    } else {
      fprintf(stderr, "snapctl: %s: %s\n", CodeName(status.error_code()),
              status.error_message().c_str());
    }
    return false;
  }

  // Server reflection (grpc.reflection.v1alpha): asks for the list of services and prints their
  // names. Without generated code: the request is field 7 (list_services) set to "".
  int Services() {
    class Reactor : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
     public:
      Reactor() {
        grpc::Slice req(std::string("\x3a\x00", 2));
        request_ = grpc::ByteBuffer(&req, 1);
      }
      void Start() {
        StartWrite(&request_);
        StartRead(&response_);
        StartCall();
      }
      void OnWriteDone(bool) override { StartWritesDone(); }
      void OnReadDone(bool ok) override {
        if (!ok) return;
        std::vector<grpc::Slice> slices;
        (void)response_.Dump(&slices);
        for (const grpc::Slice& s : slices)
          bytes_.append(reinterpret_cast<const char*>(s.begin()), s.size());
        StartRead(&response_);
      }
      void OnDone(const grpc::Status& s) override { done_.set_value(s); }
      grpc::Status Wait() { return done_.get_future().get(); }
      const std::string& bytes() const { return bytes_; }

     private:
      grpc::ByteBuffer request_, response_;
      std::string bytes_;
      std::promise<grpc::Status> done_;
    };
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    Reactor reactor;
    stub.PrepareBidiStreamingCall(&ctx,
                                  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  grpc::StubOptions(), &reactor);
    reactor.Start();
    grpc::Status status = reactor.Wait();
    if (!status.ok()) {
      fprintf(stderr, "snapctl: reflection failed: %s: %s\n", CodeName(status.error_code()),
              status.error_message().c_str());
      return 1;
    }
    // ServerReflectionResponse.list_services_response (6) -> ListServiceResponse.service (1,
    // repeated) -> ServiceResponse.name (1), read as unknown fields.
    auto fields_of = [](const std::string& bytes, int number) {
      google::protobuf::UnknownFieldSet set;
      std::vector<std::string> out;
      if (!set.ParseFromString(bytes)) return out;
      for (int i = 0; i < set.field_count(); ++i) {
        const google::protobuf::UnknownField& f = set.field(i);
        if (f.number() == number &&
            f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
          out.push_back(f.length_delimited());
        }
      }
      return out;
    };
    for (const std::string& list : fields_of(reactor.bytes(), 6)) {
      for (const std::string& service : fields_of(list, 1)) {
        for (const std::string& name : fields_of(service, 1)) printf("%s\n", name.c_str());
      }
    }
    return 0;
  }

  // The standard gRPC health service (grpc.health.v1.Health/Check, service ""), called without
  // its generated code: the request is empty, the reply is field 1, a status enum (1 = SERVING).
  int Health() {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty(std::string(""));  // an empty HealthCheckRequest, as one (empty) slice
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) { done.set_value(s); });
    grpc::Status status = done.get_future().get();
    if (!status.ok()) {
      fprintf(stderr, "snapctl: health check failed: %s: %s\n", CodeName(status.error_code()),
              status.error_message().c_str());
      return 1;
    }
    std::vector<grpc::Slice> slices;
    (void)response.Dump(&slices);
    std::string bytes;
    for (const grpc::Slice& sl : slices)
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    bool serving = bytes.size() == 2 && bytes[0] == 0x08 && bytes[1] == 0x01;
    printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
    return serving ? 0 : 1;
  }

  int Info() {
    v1::DaemonInfo info;
    if (!Call(&v1::Snapd::Stub::GetDaemonInfo, v1::GetDaemonInfoRequest(), &info)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(info);
      return 0;
    }
    printf("version       %s (%s)\n", info.version().c_str(), info.build().c_str());
    printf("pid           %d\n", info.pid());
    printf("uptime        %.1f s\n", info.uptime_ms() / 1000.0);
    printf("serving since %s",
           absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                            absl::FromUnixMillis(info.serving_since_unix_ms()), absl::UTCTimeZone())
               .c_str());
    if (info.upgrades() > 0) {
      printf(" (%u live upgrade%s since; took over from pid %d)", info.upgrades(),
             info.upgrades() == 1 ? "" : "s", info.previous_pid());
    }
    if (info.restarts() > 0) {
      printf(" (%u restart%s after a crash, apps kept)", info.restarts(),
             info.restarts() == 1 ? "" : "s");
    }
    printf("\n");
    if (info.has_last_upgrade()) {
      const v1::UpgradeReport& u = info.last_upgrade();
      const v1::EngineMove* worst = nullptr;
      for (const v1::EngineMove& m : u.engines()) {
        if (worst == nullptr || m.blackout_us() > worst->blackout_us()) worst = &m;
      }
      printf("last upgrade  %s: from pid %d, brownout %ld us, worst blackout %s\n",
             absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(u.finished_unix_ms()),
                              absl::UTCTimeZone())
                 .c_str(),
             u.old_pid(), u.brownout_us(),
             worst == nullptr
                 ? "- (no engine)"
                 : absl::StrCat(worst->blackout_us(), " us (", worst->name(), ")").c_str());
    }
    printf("memif socket  %s\n", info.memif_socket().c_str());
    printf("control       %s\n", info.control_socket().c_str());
    std::string kinds;
    for (const std::string& k : info.engine_kinds())
      absl::StrAppend(&kinds, kinds.empty() ? "" : ", ", k);
    printf("engine kinds  %s\n", kinds.c_str());
    return 0;
  }

  int Engines() {
    v1::ListEnginesResponse resp;
    if (!Call(&v1::Snapd::Stub::ListEngines, v1::ListEnginesRequest(), &resp)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(resp);
      return 0;
    }
    printf("%-14s %-8s %-16s %5s %12s %10s %7s %10s  %s\n", "NAME", "KIND", "WORKER", "CORE",
           "FRAMES", "DROPS", "BUSY%", "DELAY_US", "PORTS");
    for (const v1::Engine& e : resp.engines()) {
      std::string ports;
      for (const std::string& p : e.ports()) absl::StrAppend(&ports, ports.empty() ? "" : ",", p);
      printf("%-14s %-8s %-16s %5s %12lu %10lu %7.1f %10ld  %s\n", e.name().c_str(),
             e.kind().c_str(), e.worker().c_str(),
             e.core() < 0 ? "-" : std::to_string(e.core()).c_str(), e.stats().frames(),
             e.stats().drops(), e.stats().busy_percent(), e.stats().queueing_delay_ns() / 1000,
             ports.c_str());
    }
    return 0;
  }

  int EngineCreate(const std::string& name, const std::string& kind) {
    v1::CreateEngineRequest req;
    req.set_name(name);
    req.set_kind(kind);
    req.set_config(absl::GetFlag(FLAGS_config));
    req.set_group(absl::GetFlag(FLAGS_group));
    v1::Engine e;
    if (!Call(&v1::Snapd::Stub::CreateEngine, req, &e)) return 1;
    printf("engine %s (%s) created in group %s on worker %s\n", e.name().c_str(), e.kind().c_str(),
           e.group().c_str(), e.worker().c_str());
    return 0;
  }

  int EngineDestroy(const std::string& name) {
    v1::DestroyEngineRequest req;
    req.set_name(name);
    v1::DestroyEngineResponse resp;
    if (!Call(&v1::Snapd::Stub::DestroyEngine, req, &resp)) return 1;
    printf("engine %s destroyed\n", name.c_str());
    return 0;
  }

  int Apps() {
    v1::ListAppsResponse resp;
    if (!Call(&v1::Snapd::Stub::ListApps, v1::ListAppsRequest(), &resp)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(resp);
      return 0;
    }
    printf("%6s %-17s %-15s %-14s %-6s %4s %6s %-9s %8s  %-16s %s\n", "ID", "MAC", "IPV4", "ENGINE",
           "SECRET", "VLAN", "UID", "ATTACHED", "PID", "APP", "IPV6");
    for (const v1::App& a : resp.apps()) {
      printf("%6u %-17s %-15s %-14s %-6s %4s %6s %-9s %8s  %-16s %s\n", a.id(), a.mac().c_str(),
             a.ipv4().c_str(), a.engine().c_str(), a.has_secret() ? "yes" : "no",
             a.vlan() ? std::to_string(a.vlan()).c_str() : "-",
             a.has_uid() ? std::to_string(a.uid()).c_str() : "any", a.attached() ? "yes" : "no",
             a.attached() ? std::to_string(a.pid()).c_str() : "-",
             a.app_name().empty() ? "-" : a.app_name().c_str(),
             a.ipv6().empty() ? "-" : absl::StrJoin(a.ipv6(), ",").c_str());
    }
    return 0;
  }

  int AppAdd(uint32_t id) {
    v1::AddAppRequest req;
    req.set_id(id);
    req.set_mac(absl::GetFlag(FLAGS_mac));
    req.set_ipv4(absl::GetFlag(FLAGS_ip));
    req.set_secret(absl::GetFlag(FLAGS_secret));
    req.set_engine(absl::GetFlag(FLAGS_engine));
    for (const std::string& ip6 : absl::GetFlag(FLAGS_ip6)) req.add_ipv6(ip6);
    req.set_vlan(absl::GetFlag(FLAGS_vlan));
    if (!absl::GetFlag(FLAGS_uid).empty()) {
      uint32_t uid;
      if (!absl::SimpleAtoi(absl::GetFlag(FLAGS_uid), &uid)) {
        fprintf(stderr, "snapctl: --uid: '%s' is not a uid (a number)\n",
                absl::GetFlag(FLAGS_uid).c_str());
        return 2;
      }
      req.set_uid(uid);
    }
    v1::App app;
    if (!Call(&v1::Snapd::Stub::AddApp, req, &app)) return 1;
    printf("app %u added: %s %s on %s\n", app.id(), app.mac().c_str(), app.ipv4().c_str(),
           app.engine().c_str());
    return 0;
  }

  int AppRemove(uint32_t id) {
    v1::RemoveAppRequest req;
    req.set_id(id);
    v1::RemoveAppResponse resp;
    if (!Call(&v1::Snapd::Stub::RemoveApp, req, &resp)) return 1;
    printf("app %u removed\n", id);
    return 0;
  }

  int Ports() {
    v1::ListPortsResponse resp;
    if (!Call(&v1::Snapd::Stub::ListPorts, v1::ListPortsRequest(), &resp)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(resp);
      return 0;
    }
    printf("%s\n%s", NicTable(resp.nics(), /*with_setup=*/true).c_str(),
           PortTable(resp.ports(), /*with_kind=*/true).c_str());
    return 0;
  }

  int Connections() {
    v1::Stats resp;
    if (!Call(&v1::Snapd::Stub::GetStats, v1::GetStatsRequest(), &resp)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      v1::Stats only;
      *only.mutable_connections() = resp.connections();
      PrintJson(only);
      return 0;
    }
    if (resp.connections().empty()) {
      printf("no connections\n");
      return 0;
    }
    printf("%-10s %10s %5s %-15s %8s %-9s %8s %9s %8s %12s %12s %10s %10s\n", "ENGINE", "ID", "APP",
           "PEER", "PEER_APP", "STATE", "CWND", "SRTT_US", "RETRANS", "TX_BYTES", "RX_BYTES",
           "TX_MSGS", "RX_MSGS");
    for (const v1::Connection& c : resp.connections()) {
      printf("%-10s %10u %5u %-15s %8u %-9s %8.2f %9ld %8lu %12lu %12lu %10lu %10lu\n",
             c.engine().c_str(), c.id(), c.app(), c.peer().c_str(), c.peer_app(), c.state().c_str(),
             c.cwnd(), c.srtt_ns() / 1000, c.retransmits(), c.tx_bytes(), c.rx_bytes(),
             c.tx_messages(), c.rx_messages());
    }
    return 0;
  }

  int Groups() {
    v1::ListGroupsResponse resp;
    if (!Call(&v1::Snapd::Stub::ListGroups, v1::ListGroupsRequest(), &resp)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(resp);
      return 0;
    }
    printf("%-12s %-11s %-8s %8s %7s %10s %9s %11s  %s\n", "GROUP", "MODE", "CORES", "SLO_US",
           "WORKERS", "SCALE_OUT", "SCALE_IN", "CHANGED_MS", "ENGINES");
    for (const v1::Group& g : resp.groups()) {
      printf("%-12s %-11s %-8s %8ld %7u %10lu %9lu %11s  %s\n", g.name().c_str(), g.mode().c_str(),
             g.cores().empty() ? "any" : absl::StrJoin(g.cores(), ",").c_str(), g.slo_ns() / 1000,
             g.workers(), g.scale_outs(), g.scale_ins(),
             g.last_change_ms_ago() < 0 ? "-" : std::to_string(g.last_change_ms_ago()).c_str(),
             absl::StrJoin(g.engines(), ",").c_str());
    }
    return 0;
  }

  int Mode(const std::string& group, const std::string& mode) {
    v1::SetGroupRequest req;
    req.set_name(group);
    req.set_mode(mode);
    std::string cores = absl::GetFlag(FLAGS_cores);
    if (cores != "-") {
      req.set_set_cores(true);
      for (absl::string_view c : absl::StrSplit(cores, ',', absl::SkipEmpty())) {
        int core;
        if (!absl::SimpleAtoi(c, &core))
          return Usage(absl::StrCat("--cores: '", c, "' is not a number"));
        req.add_cores(core);
      }
    }
    std::string slo = absl::GetFlag(FLAGS_slo);
    if (!slo.empty()) {
      absl::Duration d;
      if (!absl::ParseDuration(slo, &d) || d <= absl::ZeroDuration()) {
        return Usage(absl::StrCat("--slo: '", slo, "' is not a duration like 200us"));
      }
      req.set_slo_ns(absl::ToInt64Nanoseconds(d));
    }
    v1::Group g;
    if (!Call(&v1::Snapd::Stub::SetGroup, req, &g)) return 1;
    printf(
        "group %s: %s on %u worker(s)%s\n", g.name().c_str(), g.mode().c_str(), g.workers(),
        g.cores().empty() ? "" : absl::StrCat(", cores ", absl::StrJoin(g.cores(), ",")).c_str());
    return 0;
  }

  int Top() {
    double interval = absl::GetFlag(FLAGS_interval);
    int iterations = absl::GetFlag(FLAGS_iterations);
    for (int i = 0; iterations == 0 || i < iterations; ++i) {
      v1::Stats stats;
      v1::ListGroupsResponse groups;
      if (!Call(&v1::Snapd::Stub::GetStats, v1::GetStatsRequest(), &stats)) return 1;
      if (!Call(&v1::Snapd::Stub::ListGroups, v1::ListGroupsRequest(), &groups)) return 1;
      std::string out = "\033[H\033[2J";
      absl::StrAppendFormat(&out, "snapd top: %d engines, %d workers, %d apps attached\n\n",
                            stats.engines_size(), stats.workers_size(), stats.apps_attached());
      absl::StrAppendFormat(&out, "%-16s %5s %7s %7s  %s\n", "WORKER", "CORE", "BUSY%", "STALLS",
                            "ENGINES");
      for (const v1::Worker& w : stats.workers()) {
        absl::StrAppendFormat(&out, "%-16s %5s %7.1f %7d  %s\n", w.name(),
                              w.core() < 0 ? "any" : std::to_string(w.core()), w.busy_percent(),
                              w.stalls(), absl::StrJoin(w.engines(), ","));
      }
      absl::StrAppendFormat(&out, "\n%-14s %-10s %-11s %12s %7s %10s %10s %10s\n", "ENGINE",
                            "GROUP", "MODE", "FRAMES/S", "BUSY%", "DELAY_P50", "DELAY_P99",
                            "DROPS");
      for (const v1::Engine& e : stats.engines()) {
        std::string mode;
        for (const v1::Group& g : groups.groups()) {
          if (g.name() == e.group()) mode = g.mode();
        }
        const v1::EngineStats& s = e.stats();
        absl::StrAppendFormat(&out, "%-14s %-10s %-11s %12.0f %7.1f %8dus %8dus %10d\n", e.name(),
                              e.group(), mode, s.frames_per_s(), s.busy_percent(),
                              s.queueing_delay_p50_ns() / 1000, s.queueing_delay_p99_ns() / 1000,
                              s.drops());
      }
      printf("%s", out.c_str());
      fflush(stdout);
      if (iterations == 0 || i + 1 < iterations) usleep(static_cast<useconds_t>(interval * 1e6));
    }
    return 0;
  }

  int Upgrade() {
    v1::UpgradeRequest req;
    req.set_binary(absl::GetFlag(FLAGS_binary));
    for (const std::string& a : absl::GetFlag(FLAGS_new_args)) req.add_args(a);
    for (const std::string& e : absl::GetFlag(FLAGS_engines)) req.add_engines(e);
    v1::UpgradeReport report;
    if (!Call(&v1::Snapd::Stub::Upgrade, req, &report)) return 1;
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(report);
      return 0;
    }
    printf("upgraded: pid %d -> %d, brownout %ld us\n  from %s\n  to   %s\n", report.old_pid(),
           report.new_pid(), report.brownout_us(), report.old_build().c_str(),
           report.new_build().c_str());
    printf("%-14s %12s %12s\n", "ENGINE", "BLACKOUT_US", "HANDOVER_US");
    for (const v1::EngineMove& m : report.engines()) {
      printf("%-14s %12ld %12ld\n", m.name().c_str(), m.blackout_us(), m.handover_us());
    }
    for (const std::string& note : report.notes()) printf("note: %s\n", note.c_str());
    return 0;
  }

  int Stats() {
    double watch = absl::GetFlag(FLAGS_watch);
    while (true) {
      v1::Stats stats;
      if (!Call(&v1::Snapd::Stub::GetStats, v1::GetStatsRequest(), &stats)) return 1;
      if (absl::GetFlag(FLAGS_json)) {
        PrintJson(stats);
      } else {
        if (watch > 0) printf("\033[H\033[2J");  // redraw in place
        printf("%s", StatsTable(stats).c_str());
        printf("%-16s %5s %12s %10s %10s %10s %7s %7s  %s\n", "worker", "core", "loops", "sleeps",
               "port_wake", "timed_wake", "busy%", "stalls", "engines");
        for (const v1::Worker& w : stats.workers()) {
          std::string engines;
          for (const std::string& e : w.engines())
            absl::StrAppend(&engines, engines.empty() ? "" : ",", e);
          printf("%-16s %5s %12lu %10lu %10lu %10lu %7.1f %7lu  %s\n", w.name().c_str(),
                 w.core() < 0 ? "-" : std::to_string(w.core()).c_str(), w.loops(), w.sleeps(),
                 w.port_wakeups(), w.timed_wakeups(), w.busy_percent(), w.stalls(),
                 engines.c_str());
        }
      }
      fflush(stdout);
      if (watch <= 0) return 0;
      usleep(static_cast<useconds_t>(watch * 1e6));
    }
  }

 private:
  std::string socket_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Snapd::Stub> stub_;

 public:
  // A capture, as pcapng, into --output (a file, or stdout for "-"); what was captured and lost
  // on stderr. Interrupted (SIGINT, SIGTERM), it cancels the capture: the file has every frame
  // streamed so far, without the statistics blocks.
  int Capture() {
    v1::CaptureRequest req;
    req.set_port(absl::GetFlag(FLAGS_port));
    req.set_nic(absl::GetFlag(FLAGS_nic));
    const std::string direction = absl::GetFlag(FLAGS_direction);
    if (direction == "rx") {
      req.set_direction(v1::CaptureRequest::RX);
    } else if (direction == "tx") {
      req.set_direction(v1::CaptureRequest::TX);
    } else if (direction != "both") {
      return Usage("--direction: rx, tx or both");
    }
    req.set_count(absl::GetFlag(FLAGS_count));
    req.set_duration_ms(static_cast<uint64_t>(absl::GetFlag(FLAGS_duration) * 1000));
    req.set_snaplen(absl::GetFlag(FLAGS_snaplen));
    req.set_filter(absl::GetFlag(FLAGS_filter));
    req.set_buffer_kb(absl::GetFlag(FLAGS_buffer_kb));
    const std::string output = absl::GetFlag(FLAGS_output);
    FILE* out = output == "-" ? stdout : fopen(output.c_str(), "wb");
    if (out == nullptr) {
      fprintf(stderr, "snapctl: cannot write %s: %s\n", output.c_str(), strerror(errno));
      return 1;
    }
    // SIGINT and SIGTERM cancel the call: their handler (whichever thread it runs on; gRPC has
    // threads of its own) writes to a pipe, and a thread of ours reads it. The handlers are set
    // even where a shell started us with SIGINT ignored (a background job).
    int wake[2];
    if (pipe2(wake, O_CLOEXEC) != 0) return 1;
    g_interrupt_fd = wake[1];
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      const char c = 1;
      (void)!write(g_interrupt_fd, &c, 1);
    };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    absl::Mutex call_mu;
    grpc::ClientContext* call = nullptr;  // the call running, for the canceller
    bool interrupted = false;
    std::thread canceller([&] {
      char c;
      if (read(wake[0], &c, 1) == 1 && c == 1) {
        absl::MutexLock lock(&call_mu);
        interrupted = true;
        if (call != nullptr) call->TryCancel();
      }
    });
    // A live upgrade ends the old snapd's stream with a resume id; the new snapd has gone on
    // capturing meanwhile, and the rest of the stream is asked of it (the same file, the same
    // section: it sends no header again).
    const absl::Time began = absl::Now();
    const uint64_t duration_ms = req.duration_ms();
    absl::Time resume_until = absl::InfiniteFuture();
    v1::CaptureChunk chunk, last;
    std::vector<std::string> ports;
    bool jit = false;
    bool wrote_ok = true;
    int upgrades = 0;
    bool streamed = false;  // a chunk came
    std::string failed;
    grpc::Status status;
    while (true) {
      grpc::ClientContext ctx;
      {
        absl::MutexLock lock(&call_mu);
        if (interrupted) break;
        call = &ctx;
      }
      // Going on after an upgrade: a connection of its own, made now, to whichever snapd listens
      // on the socket (our channel's may still be the old snapd's, which is on its way out).
      std::shared_ptr<grpc::Channel> channel = channel_;
      if (req.resume_id() != 0) {
        grpc::ChannelArguments args = LargeMessages();
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        channel =
            grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args);
      }
      std::unique_ptr<v1::Snapd::Stub> stub = v1::Snapd::NewStub(channel);
      std::unique_ptr<grpc::ClientReader<v1::CaptureChunk>> reader = stub->Capture(&ctx, req);
      bool first = true;
      last.Clear();
      while (reader->Read(&chunk)) {
        streamed = true;
        if (first) {
          first = false;
          const std::vector<std::string> now(chunk.ports().begin(), chunk.ports().end());
          if (req.resume_id() != 0 && (!chunk.resumed() || now != ports)) {
            failed = chunk.resumed() ? absl::StrCat("the new snapd's capture has ports ",
                                                    absl::StrJoin(now, ","), ", not ",
                                                    absl::StrJoin(ports, ","))
                                     : "the new snapd started the capture anew";
            ctx.TryCancel();
            break;
          }
          ports = now;
          jit = chunk.filter_jit();
        }
        if (!chunk.pcapng().empty() &&
            fwrite(chunk.pcapng().data(), 1, chunk.pcapng().size(), out) != chunk.pcapng().size()) {
          wrote_ok = false;
          ctx.TryCancel();
          break;
        }
        fflush(out);
        if (chunk.done()) last = chunk;
      }
      status = reader->Finish();
      bool stopped;
      {
        absl::MutexLock lock(&call_mu);
        call = nullptr;
        stopped = interrupted;
      }
      if (!wrote_ok || !failed.empty()) break;
      // Not answered yet (the old snapd refusing or stopping, the new one not serving yet).
      if (first && req.resume_id() != 0 && !stopped && absl::Now() < resume_until &&
          (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
           status.error_code() == grpc::StatusCode::CANCELLED)) {
        absl::SleepFor(absl::Milliseconds(50));
        continue;
      }
      if (!last.done() || last.ended() != "upgrade" || last.resume_id() == 0) break;
      ++upgrades;
      fprintf(stderr,
              "snapctl: snapd is upgrading: %lu frame(s) so far; going on with the new one\n",
              static_cast<unsigned long>(last.captured()));
      req.set_resume_id(last.resume_id());
      req.set_resume_written(last.captured());
      *req.mutable_resume_prior() = last.port_totals();
      if (duration_ms > 0) {
        const int64_t left =
            static_cast<int64_t>(duration_ms) - absl::ToInt64Milliseconds(absl::Now() - began);
        req.set_duration_ms(static_cast<uint64_t>(std::max<int64_t>(left, 1)));
      }
      // The new snapd waits Daemon::kResumeWithinNs (30 s) for us; it serves within seconds.
      resume_until = absl::Now() + absl::Seconds(20);
    }
    const char done = 0;
    (void)!write(wake[1], &done, 1);  // the canceller's read returns
    canceller.join();
    if (out != stdout) fclose(out);
    if (!wrote_ok) {
      fprintf(stderr, "snapctl: writing %s failed: %s\n", output.c_str(), strerror(errno));
      return 1;
    }
    if (!failed.empty()) {
      fprintf(stderr, "snapctl: capture: %s; %s has the frames streamed so far\n", failed.c_str(),
              output.c_str());
      return 1;
    }
    if (!last.done()) {
      if (interrupted) {  // (a CANCELLED of snapd's own, say as it stops, is no interrupt)
        fprintf(stderr, "snapctl: capture interrupted; %s has the frames streamed so far\n",
                output.c_str());
        return 0;
      }
      // Refused at the start, or broken off after frames came (snapd stopped, or upgraded while
      // we did not read: the old snapd waits for a reader only so long).
      const char* when = req.resume_id() != 0 ? "going on with the capture after the upgrade: "
                         : streamed           ? "the capture broke off: "
                                              : "";
      fprintf(stderr, "snapctl: %s%s: %s\n", when, CodeName(status.error_code()),
              status.error_message().c_str());
      if (streamed) {
        fprintf(stderr, "snapctl: %s has the frames streamed so far\n", output.c_str());
      }
      return 1;
    }
    const std::string filtered = req.filter().empty()
                                     ? ""
                                     : absl::StrCat(", ", last.accepted(), " passed the filter",
                                                    jit ? " (JIT)" : " (interpreted)");
    const std::string across =
        upgrades == 0 ? "" : absl::StrCat(" (across ", upgrades, " live upgrade(s))");
    fprintf(stderr, "snapctl: captured %lu frame(s) on %s (%lu seen%s), %lu dropped; ended: %s%s\n",
            static_cast<unsigned long>(last.captured()), absl::StrJoin(ports, ",").c_str(),
            static_cast<unsigned long>(last.seen()), filtered.c_str(),
            static_cast<unsigned long>(last.dropped()), last.ended().c_str(), across.c_str());
    return 0;
  }

  // The event log, oldest first; --follow: then each event as it happens. A snapd that goes away
  // (an upgrade hands over to a new one, a restart) is asked again from the last event seen, for
  // up to 30 s; the sequence goes on across an upgrade.
  int Events() {
    const bool follow = absl::GetFlag(FLAGS_follow);
    const bool json = absl::GetFlag(FLAGS_json);
    uint64_t after = 0, log_id = 0;
    absl::Time reached = absl::Now();
    bool said_away = false;
    while (true) {
      grpc::ClientContext ctx;
      if (!follow) {
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(int64_t(absl::GetFlag(FLAGS_timeout_s) * 1000)));
      }
      v1::EventsRequest req;
      req.set_after_seq(after);
      req.set_follow(follow);
      req.set_log_id(log_id);
      std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub_->Events(&ctx, req);
      v1::Event e;
      while (reader->Read(&e)) {
        reached = absl::Now();
        if (said_away) fprintf(stderr, "snapctl: events: snapd is back\n");
        said_away = false;
        PrintEvent(e, json);
        after = e.seq();
        log_id = e.log_id();
      }
      grpc::Status status = reader->Finish();
      if (!follow && status.ok()) return 0;
      const bool away = status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                        status.error_code() == grpc::StatusCode::CANCELLED;
      if (!follow || !away) {
        fprintf(stderr, "snapctl: %s: %s\n", CodeName(status.error_code()),
                status.error_message().c_str());
        return 1;
      }
      if (absl::Now() - reached > absl::Seconds(30)) {
        fprintf(stderr, "snapctl: events: snapd at %s has not answered for 30 s\n",
                socket_.c_str());
        return 1;
      }
      if (!said_away) fprintf(stderr, "snapctl: events: snapd went away; asking again\n");
      said_away = true;
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

 private:
  static void PrintEvent(const v1::Event& e, bool json) {
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(e, &out, options);
      printf("%s\n", out.c_str());
    } else {
      if (e.missed() > 0) {
        printf("... %lu earlier event(s) no longer kept\n", static_cast<unsigned long>(e.missed()));
      }
      printf("%s %6lu %-13s %-16s %s\n",
             absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(e.unix_ms()),
                              absl::UTCTimeZone())
                 .c_str(),
             static_cast<unsigned long>(e.seq()), e.kind().c_str(), e.subject().c_str(),
             e.message().c_str());
    }
    fflush(stdout);
  }
};

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "snapd's operator command line.\n"
      "Usage: snapctl [--socket=PATH] [--json] COMMAND\n"
      "  info | engines | apps | ports | groups | connections | stats [--watch=SECONDS] | top\n"
      "  events [--follow]\n"
      "  capture (--port=NAME | --nic=NAME) [--direction=rx|tx|both] [--count=N] [--duration=S]\n"
      "          [--snaplen=N] [--filter=EXPR] [--buffer_kb=K] --output=FILE|-\n"
      "  engine create NAME KIND [--config=TEXT] [--group=G] | engine destroy NAME\n"
      "  mode GROUP dedicated|spreading|compacting [--cores=0,1] [--slo=200us]\n"
      "  app add ID --mac=MAC --ip=ADDR [--ip6=A6,..] [--vlan=V] [--uid=U] [--secret=S] "
      "[--engine=E]\n"
      "  app remove ID\n"
      "  upgrade --binary=PATH [--engines=NAME,...]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> a(args.begin() + 1, args.end());
  if (a.empty()) return Usage("no command");
  std::string socket = absl::GetFlag(FLAGS_socket);
  Cli cli(socket.empty() ? DefaultControlSocket() : socket);
  const std::string& cmd = a[0];
  auto want = [&](size_t n) { return a.size() == n; };
  if (cmd == "info" && want(1)) return cli.Info();
  if (cmd == "health" && want(1)) return cli.Health();
  if (cmd == "services" && want(1)) return cli.Services();
  if (cmd == "engines" && want(1)) return cli.Engines();
  if (cmd == "apps" && want(1)) return cli.Apps();
  if (cmd == "ports" && want(1)) return cli.Ports();
  if (cmd == "stats" && want(1)) return cli.Stats();
  if (cmd == "groups" && want(1)) return cli.Groups();
  if (cmd == "connections" && want(1)) return cli.Connections();
  if (cmd == "top" && want(1)) return cli.Top();
  if (cmd == "events" && want(1)) return cli.Events();
  if (cmd == "capture" && want(1)) {
    if (absl::GetFlag(FLAGS_output).empty()) return Usage("capture needs --output=FILE (or -)");
    return cli.Capture();
  }
  if (cmd == "upgrade" && want(1)) {
    if (absl::GetFlag(FLAGS_binary).empty()) return Usage("upgrade --binary=PATH");
    return cli.Upgrade();
  }
  if (cmd == "mode") {
    if (!want(3)) return Usage("mode GROUP dedicated|spreading|compacting [--cores=..] [--slo=..]");
    return cli.Mode(a[1], a[2]);
  }
  if (cmd == "engine" && a.size() >= 2) {
    if (a[1] == "create" && want(4)) return cli.EngineCreate(a[2], a[3]);
    if (a[1] == "destroy" && want(3)) return cli.EngineDestroy(a[2]);
    return Usage("engine create NAME KIND | engine destroy NAME");
  }
  if (cmd == "app" && a.size() >= 2) {
    uint32_t id;
    if (a.size() != 3 || !absl::SimpleAtoi(a[2], &id)) {
      return Usage("app add ID --mac=MAC --ip=ADDR | app remove ID (ID a number)");
    }
    if (a[1] == "add") return cli.AppAdd(id);
    if (a[1] == "remove") return cli.AppRemove(id);
    return Usage("app add|remove ID");
  }
  return Usage(absl::StrCat("unknown command '", absl::StrJoin(a, " "), "'"));
}

}  // namespace
}  // namespace snapd

int main(int argc, char** argv) { return snapd::Main(argc, argv); }
