#pragma once
// A real etcd cluster (Debian's etcd-server, /usr/bin/etcd) for tests: three
// members by default, each on two free ports of 127.0.0.1 (client, peer; or
// on addresses, ports and uids of the test's choosing, for the partition
// tests in a network namespace of their own),
// each with its own data dir and log in one temp dir. The constructor returns
// once every member answers `etcdctl endpoint health` (a quorum read, so a
// leader is elected), or throws std::runtime_error with the members' logs;
// the destructor stops every member (SIGTERM, SIGKILL after `stop_timeout`)
// and reaps it. A member can be killed and restarted on its own data dir,
// so tests can take quorum away and give it back. Sleeps are allowed here:
// this is a helper for tests against real processes.
//
// Heartbeat and election timeouts are short (50 ms / 500 ms) so that the
// cluster forms and re-elects within a second on a busy machine; the v2 API
// is off: the project speaks v3 only.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/memcached_server.hpp" // free_loopback_port
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

namespace mcfg::test {

/// TLS for the client port: members serve https with `cert`/`key`; with
/// `client_cert_auth`, they accept only clients whose certificate `ca`
/// signed.
struct etcd_tls {
  std::string ca;
  std::string cert;
  std::string key;
  bool client_cert_auth = true;
  /// What etcdctl presents; empty: `cert` and `key`.
  std::string client_cert;
  std::string client_key;
};

struct etcd_cluster_options {
  size_t members = 3;
  std::string binary = "/usr/bin/etcd";
  std::string etcdctl = "/usr/bin/etcdctl";
  std::optional<etcd_tls> tls;
  /// For etcdctl calls once auth is on: "user:password".
  std::string etcdctl_user;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
  /// Member i listens on hosts[i] (client and peer port); empty: every
  /// member on 127.0.0.1. For tests in a network namespace of their own
  /// that cut one member's address off from the others'.
  std::vector<std::string> hosts;
  /// Fixed ports (client, peer) per member instead of free ones: in a
  /// namespace of the test's own every port is free.
  std::vector<std::pair<uint16_t, uint16_t>> ports;
  /// More flags for every member (e.g. a short
  /// --experimental-watch-progress-notify-interval).
  std::vector<std::string> extra_flags;
  /// Member i runs as uid (and gid) run_as[i] through setpriv, its data dir
  /// its own; 0 or absent: as the test. Lets nftables tell one member's
  /// sockets from the others' (`meta skuid`), which addresses cannot: on
  /// loopback a connection to 127.0.0.12 comes from 127.0.0.12 whoever
  /// makes it.
  std::vector<uid_t> run_as;
};

/// Whether the etcd and etcdctl binaries are there to run.
inline bool etcd_installed(const etcd_cluster_options& opts = {}) {
  return ::access(opts.binary.c_str(), X_OK) == 0
         && ::access(opts.etcdctl.c_str(), X_OK) == 0;
}

class etcd_cluster {
public:
  explicit etcd_cluster(etcd_cluster_options opts = {})
    : opts_(std::move(opts)) {
    // A port is free when picked, but another process may take it before
    // etcd binds it: then that member exits, and the whole cluster is tried
    // again on new ports (a cluster's ports are fixed at its first start).
    std::string last_failure;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (try_start(attempt, last_failure))
        return;
      stop_all();
    }
    throw std::runtime_error("etcd cluster did not start: " + last_failure);
  }

  ~etcd_cluster() {
    stop_all();
  }

  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  size_t size() const {
    return members_.size();
  }

  /// Member `i`'s client URL.
  std::string endpoint(size_t i) const {
    return scheme() + "://" + host(i) + ":"
           + std::to_string(members_.at(i).client_port);
  }

  /// Member `i`'s address.
  std::string host(size_t i) const {
    return i < opts_.hosts.size() ? opts_.hosts[i] : "127.0.0.1";
  }

  /// Member `i`'s client and peer ports.
  uint16_t client_port(size_t i) const {
    return members_.at(i).client_port;
  }
  uint16_t peer_port(size_t i) const {
    return members_.at(i).peer_port;
  }

  /// Every member's client URL, in member order.
  std::vector<std::string> endpoints() const {
    std::vector<std::string> result;
    for (size_t i = 0; i < members_.size(); ++i)
      result.push_back(endpoint(i));
    return result;
  }

  /// The endpoints as one comma-separated list (etcdctl's form).
  std::string endpoint_list() const {
    std::string result;
    for (auto& url : endpoints())
      result += (result.empty() ? "" : ",") + url;
    return result;
  }

  bool running(size_t i) const {
    return members_.at(i).proc != nullptr;
  }

  /// SIGKILLs member `i` and reaps it: a crash, not a shutdown.
  void kill_member(size_t i) {
    auto& m = members_.at(i);
    if (!m.proc)
      return;
    m.proc->signal(SIGKILL);
    m.proc->wait_exit(opts_.stop_timeout);
    m.proc.reset();
  }

  /// Whether a running member answers a quorum read within `timeout` (after
  /// a kill: the others have elected a leader).
  bool wait_for_quorum(std::chrono::milliseconds timeout
                       = std::chrono::seconds(15)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline)
      for (size_t i = 0; i < members_.size(); ++i)
        if (members_[i].proc && healthy(i))
          return true;
    return false;
  }

  /// Starts member `i` again on its data dir and ports; returns once it
  /// answers health (which needs a quorum of members running).
  void restart_member(size_t i) {
    auto& m = members_.at(i);
    if (m.proc)
      return;
    spawn(i, "existing");
    if (!wait_healthy(i, opts_.start_timeout))
      throw std::runtime_error("etcd member " + m.name
                               + " did not become healthy: " + log_of(i));
  }

  /// Whether member `i` answers a health check (a quorum read) in time.
  bool
  healthy(size_t i,
          std::chrono::milliseconds timeout = std::chrono::seconds(2)) const {
    auto r = etcdctl_at(
      endpoint(i),
      {"endpoint", "health",
       "--command-timeout=" + std::to_string(timeout.count()) + "ms"});
    return r.exit_code == 0;
  }

  /// What member `i` logged so far.
  std::string log_of(size_t i) const {
    return read_file(members_.at(i).log);
  }

  struct etcdctl_result {
    int exit_code = -2;
    std::string out;
    std::string err;
  };

  /// Runs etcdctl against every member (with the cluster's TLS and user);
  /// `stdin_text`, when given, is its standard input.
  etcdctl_result
  etcdctl(std::vector<std::string> args,
          const std::optional<std::string>& stdin_text = std::nullopt) const {
    return etcdctl_at(endpoint_list(), std::move(args), stdin_text);
  }

  /// etcdctl that must succeed: its stdout, or std::runtime_error with its
  /// stderr.
  std::string etcdctl_ok(std::vector<std::string> args,
                         const std::optional<std::string>& stdin_text
                         = std::nullopt) const {
    auto r = etcdctl(args, stdin_text);
    if (r.exit_code != 0) {
      std::string cmd;
      for (auto& a : args)
        cmd += " " + a;
      throw std::runtime_error("etcdctl" + cmd + " failed ("
                               + std::to_string(r.exit_code) + "): " + r.err);
    }
    return r.out;
  }

  /// The user etcdctl runs as from now on ("user:password"; empty: none).
  void set_etcdctl_user(std::string user) {
    opts_.etcdctl_user = std::move(user);
  }

  const std::string& dir() const {
    return dir_.path.native();
  }

private:
  struct member {
    size_t index = 0;
    std::string name;
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    std::string data_dir;
    std::string log;
    std::unique_ptr<child_process> proc;
  };

  std::string scheme() const {
    return opts_.tls ? "https" : "http";
  }

  std::string peer_url(const member& m) const {
    return "http://" + host(m.index) + ":" + std::to_string(m.peer_port);
  }

  bool try_start(int attempt, std::string& failure) {
    members_.clear();
    members_.resize(opts_.members);
    std::string initial_cluster;
    for (size_t i = 0; i < members_.size(); ++i) {
      auto& m = members_[i];
      m.index = i;
      m.name = "m" + std::to_string(i) + "-" + std::to_string(attempt);
      if (i < opts_.ports.size()) {
        m.client_port = opts_.ports[i].first;
        m.peer_port = opts_.ports[i].second;
      } else {
        m.client_port = free_loopback_port();
        m.peer_port = free_loopback_port();
      }
      m.data_dir = dir_ / (m.name + ".etcd");
      m.log = dir_ / (m.name + ".log");
      initial_cluster += (i == 0 ? "" : ",") + m.name + "=" + peer_url(m);
    }
    initial_cluster_ = initial_cluster;
    // A token unique to this cluster: members of two clusters started by
    // concurrent tests must never join each other.
    token_ = "mcfg-" + std::to_string(::getpid()) + "-"
             + std::to_string(reinterpret_cast<uintptr_t>(this)) + "-"
             + std::to_string(attempt);
    for (size_t i = 0; i < members_.size(); ++i)
      spawn(i, "new");
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!wait_healthy(i, opts_.start_timeout)) {
        failure.clear();
        for (size_t j = 0; j < members_.size(); ++j)
          failure += "\n--- " + members_[j].name + ":\n" + tail(log_of(j));
        return false;
      }
    }
    return true;
  }

  uid_t uid_of(size_t i) const {
    return i < opts_.run_as.size() ? opts_.run_as[i] : 0;
  }

  /// The setpriv prefix that runs member `i` as its uid, after giving it
  /// its data dir (and the way there).
  std::vector<std::string> run_as_prefix(size_t i) {
    auto uid = uid_of(i);
    if (uid == 0)
      return {};
    auto& m = members_[i];
    std::filesystem::permissions(dir_.path, std::filesystem::perms(0711));
    std::filesystem::create_directories(m.data_dir);
    std::filesystem::permissions(m.data_dir, std::filesystem::perms(0700));
    if (::chown(m.data_dir.c_str(), uid, uid) != 0)
      throw std::runtime_error("chown " + m.data_dir + " failed");
    auto id = std::to_string(uid);
    return {"/usr/bin/setpriv", "--reuid=" + id, "--regid=" + id,
            "--clear-groups", "--"};
  }

  void spawn(size_t i, const std::string& state) {
    auto& m = members_[i];
    auto client = endpoint(i);
    auto args = run_as_prefix(i);
    args.insert(
      args.end(),
      {opts_.binary, "--name=" + m.name, "--data-dir=" + m.data_dir,
       "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
       "--listen-peer-urls=" + peer_url(m),
       "--initial-advertise-peer-urls=" + peer_url(m),
       "--initial-cluster=" + initial_cluster_,
       "--initial-cluster-state=" + state, "--initial-cluster-token=" + token_,
       "--heartbeat-interval=50", "--election-timeout=500", "--enable-v2=false",
       "--logger=zap", "--log-outputs=stderr"});
    args.insert(args.end(), opts_.extra_flags.begin(), opts_.extra_flags.end());
    if (opts_.tls) {
      args.push_back("--cert-file=" + opts_.tls->cert);
      args.push_back("--key-file=" + opts_.tls->key);
      args.push_back("--trusted-ca-file=" + opts_.tls->ca);
      if (opts_.tls->client_cert_auth)
        args.push_back("--client-cert-auth");
    }
    m.proc = std::make_unique<child_process>(std::move(args), m.log + ".out",
                                             m.log, /*append=*/true);
  }

  bool wait_healthy(size_t i, std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + timeout;
    while (clock::now() < deadline) {
      auto& m = members_[i];
      if (m.proc && m.proc->wait_exit(std::chrono::milliseconds(0))) {
        m.proc.reset();
        return false;
      }
      if (healthy(i, std::chrono::milliseconds(1000)))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  etcdctl_result etcdctl_at(
    const std::string& endpoints, std::vector<std::string> args,
    const std::optional<std::string>& stdin_text = std::nullopt) const {
    std::vector<std::string> argv{opts_.etcdctl, "--endpoints=" + endpoints,
                                  "--dial-timeout=2s"};
    if (opts_.tls) {
      argv.push_back("--cacert=" + opts_.tls->ca);
      auto& t = *opts_.tls;
      argv.push_back("--cert="
                     + (t.client_cert.empty() ? t.cert : t.client_cert));
      argv.push_back("--key=" + (t.client_key.empty() ? t.key : t.client_key));
    }
    if (!opts_.etcdctl_user.empty())
      argv.push_back("--user=" + opts_.etcdctl_user);
    argv.insert(argv.end(), args.begin(), args.end());
    // Calls may run from several test threads: each gets its own files.
    static std::atomic<uint64_t> calls{0};
    auto n = std::to_string(calls++);
    auto out = dir_ / ("etcdctl." + n + ".out");
    auto err = dir_ / ("etcdctl." + n + ".err");
    std::string in;
    if (stdin_text) {
      in = dir_ / ("etcdctl." + n + ".in");
      write_text(in, *stdin_text);
    }
    etcdctl_result result;
    {
      child_process proc{std::move(argv), out, err, false, in};
      result.exit_code
        = proc.wait_exit_code(std::chrono::seconds(30)).value_or(-3);
    }
    result.out = read_file(out);
    result.err = read_file(err);
    std::error_code ignored;
    for (auto& f : {out, err, in})
      if (!f.empty())
        std::filesystem::remove(f, ignored);
    return result;
  }

  static std::string tail(const std::string& text, size_t n = 2000) {
    return text.size() <= n ? text : "..." + text.substr(text.size() - n);
  }

  /// One member at a time: members stopped together each wait for the
  /// others to take over leadership, for seconds.
  void stop_all() {
    for (auto& m : members_) {
      if (!m.proc)
        continue;
      m.proc->signal(SIGTERM);
      if (!m.proc->wait_exit(opts_.stop_timeout))
        m.proc->signal(SIGKILL);
      m.proc.reset(); // reaps
    }
  }

  temp_dir dir_;
  etcd_cluster_options opts_;
  std::vector<member> members_;
  std::string initial_cluster_;
  std::string token_;
};

} // namespace mcfg::test
