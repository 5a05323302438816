// The etcd store's sync against a real three-member cluster: it reads etcd's
// current revision first and answers once the follower has handed it over,
// promptly when the newest revision touched no user, and with an error
// within the client's bounds when no member answers. Real threads and real
// time (the store's follower and its sync probes are threads of their own);
// every wait is bounded.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/message_types.hpp"
#include "memcached_cfg/source/etcd_store.hpp"
#include "source/etcd_fixture.hpp"

using namespace mcfg;
using namespace std::chrono_literals;
using mcfg::test::etcd_cluster;
using mcfg::test::options_for;
using mcfg::test::shared_cluster;

namespace {

using steady = std::chrono::steady_clock;

/// What one sync answered, and how long it took.
struct sync_answer {
  std::optional<uint64_t> version;
  std::string error;
  steady::duration took{};
};

/// A store on `prefix` of `cluster`, in an actor system of its own.
struct store_fixture {
  etcd::client_options opts;
  std::string prefix;
  std::shared_ptr<source_of_truth> truth = source_of_truth::make();
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  store_actor store;

  store_fixture(const etcd_cluster& cluster, std::string key_prefix)
    : opts(options_for(cluster)), prefix(std::move(key_prefix)) {
    add_message_types(cfg);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    etcd_store_spec spec;
    spec.client = opts;
    spec.prefix = prefix;
    spec.truth = truth;
    spec.validate = [](const source_document&) {
      return std::vector<located_error>{};
    };
    store = spawn_etcd_store(*sys, std::move(spec));
  }

  ~store_fixture() {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  }

  etcd::client client() const {
    return etcd::client{opts};
  }

  sync_answer sync() {
    caf::scoped_actor self{*sys};
    sync_answer out;
    auto t0 = steady::now();
    self->request(store, 30s, sync_atom::value)
      .receive([&](uint64_t v) { out.version = v; },
               [&](caf::error& err) { out.error = describe(err); });
    out.took = steady::now() - t0;
    return out;
  }

  source_status status() {
    caf::scoped_actor self{*sys};
    source_status out;
    self->request(store, 5s, status_atom::value)
      .receive([&](source_status& st) { out = std::move(st); },
               [&](caf::error& err) { FAIL(describe(err)); });
    return out;
  }

  /// The password of `user` in the version published last, or "(none)".
  std::string password_of(const std::string& user) const {
    auto now = truth->read();
    auto i = now.values.find("users/" + user);
    if (i == now.values.end())
      return "(none)";
    auto dict = caf::get_if<config_value::dictionary>(&i->second);
    if (!dict)
      return "(not a map)";
    auto j = dict->find("password");
    if (j == dict->end())
      return "(no password)";
    auto pw = caf::get_if<std::string>(&j->second);
    return pw ? *pw : "(not text)";
  }
};

std::string user_json(const std::string& pw) {
  return R"({"password": ")" + pw + R"(", "roles": []})";
}

} // namespace

TEST_CASE("etcd store: sync right after a put names a version that holds "
          "the put, 10 times") {
  store_fixture f{shared_cluster(), "/store-put/"};
  auto c = f.client();
  for (int i = 0; i < 10; ++i) {
    auto pw = "pw-" + std::to_string(i);
    c.put("/store-put/users/alice", user_json(pw));
    auto answer = f.sync();
    REQUIRE_MESSAGE(answer.version, answer.error);
    CHECK(f.truth->version() == *answer.version);
    CHECK(f.password_of("alice") == pw);
  }
  // One version per put: none skipped, none made twice.
  CHECK(f.truth->version() == 10);
  CHECK(f.status().last_error.empty());
}

TEST_CASE("etcd store: sync when the newest revision changed no user "
          "answers promptly with the same version") {
  store_fixture f{shared_cluster(), "/store-other/"};
  auto c = f.client();
  c.put("/store-other/users/alice", user_json("pw-1"));
  auto first = f.sync();
  REQUIRE_MESSAGE(first.version, first.error);
  CHECK(f.password_of("alice") == "pw-1");
  // Revisions the follower's watch of users/ never sees.
  for (int i = 0; i < 3; ++i) {
    c.put("/store-other/nodes/n1", "{}");
    auto answer = f.sync();
    REQUIRE_MESSAGE(answer.version, answer.error);
    CHECK(*answer.version == *first.version);
    CHECK(answer.took < 2s);
  }
  // Nothing new at all: the same.
  auto again = f.sync();
  REQUIRE_MESSAGE(again.version, again.error);
  CHECK(*again.version == *first.version);
  CHECK(again.took < 2s);
  CHECK(f.truth->version() == *first.version);
}

TEST_CASE("etcd store: sync with a refused newest revision answers the "
          "refusal once the follower has it") {
  store_fixture f{shared_cluster(), "/store-bad/"};
  auto c = f.client();
  c.put("/store-bad/users/alice", user_json("pw-1"));
  auto good = f.sync();
  REQUIRE_MESSAGE(good.version, good.error);
  c.put("/store-bad/users/bob", R"({"password": ["x"]})");
  auto answer = f.sync();
  CHECK_FALSE(answer.version);
  CHECK(answer.error.find("users/bob") != std::string::npos);
  CHECK(f.truth->version() == *good.version);
  CHECK(f.password_of("alice") == "pw-1");
}

TEST_CASE("etcd store: sync with every member down answers an error within "
          "the client's bounds while status still answers") {
  etcd_cluster cluster;
  store_fixture f{cluster, "/store-down/"};
  f.client().put("/store-down/users/alice", user_json("pw-1"));
  auto good = f.sync();
  REQUIRE_MESSAGE(good.version, good.error);
  for (size_t i = 0; i < cluster.size(); ++i)
    cluster.kill_member(i);
  auto pending = std::async(std::launch::async, [&] { return f.sync(); });
  // The store itself does not wait for etcd: status answers meanwhile.
  auto t0 = steady::now();
  auto st = f.status();
  CHECK(steady::now() - t0 < 1s);
  CHECK(st.version == *good.version);
  auto answer = pending.get();
  CHECK_FALSE(answer.version);
  CHECK(answer.error.find("could not read etcd's current revision")
        != std::string::npos);
  auto bound = f.opts.retry_for + f.opts.request_timeout;
  CHECK(answer.took <= bound + 2s);
  CHECK(f.truth->version() == *good.version);
}
