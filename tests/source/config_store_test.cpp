// The source actors under the test_coordinator: the config_store watching a
// real source file, and the shared source of truth.
#include <doctest/doctest.h>

#include <caf/send.hpp>

#include "source/config_store.hpp"
#include "actors/memcached_cfg.hpp"
#include "source/source_of_truth.hpp"
#include "messages/errors.hpp"
#include "modules/memcached_passwords.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

std::vector<located_error> validate_passwords(const source_document& doc) {
  if (auto problem = validate_memcached_passwords(doc.values))
    return {doc.locate(problem->key, problem->message)};
  return {};
}

struct store_fixture : coordinator_fixture {
  temp_dir dir;
  std::string source = dir / "source.yaml";
  std::string auth = dir / "auth";
  std::shared_ptr<source_of_truth> truth = source_of_truth::make();
  config_store_actor store;
  memcached_cfg_actor writer;
  log_capture logs;

  void start(const std::string& yaml) {
    write_text(source, yaml);
    store = spawn_config_store(sys, {source, truth, validate_passwords, 250ms});
    run();
    writer_spec spec;
    spec.settings.path = auth;
    spec.make_module = make_memcached_passwords;
    spec.subscribe = [t = truth](const memcached_cfg_actor& self) {
      t->subscribe(self);
    };
    spec.read_snapshot = [t = truth] { return t->read(); };
    writer = spawn_memcached_cfg(sys, std::move(spec));
    run();
  }

  source_status store_status() {
    auto r = ask<source_status>(sys, store, status_atom::value);
    run();
    REQUIRE(r->value);
    return *r->value;
  }
};

} // namespace

TEST_CASE_FIXTURE(store_fixture,
                  "the source watcher applies a good edit, refuses a bad one "
                  "keeping the last good file, then applies a good one") {
  start("users:\n  alice: {password: a1}\n");
  REQUIRE(read_file(auth) == "alice:a1\n");
  CHECK(truth->version() == 1);

  // A good edit is seen within one poll interval, not before it is made.
  write_text(source, "users:\n  alice: {password: a1}\n  bob: {password: b1}\n");
  CHECK(read_file(auth) == "alice:a1\n");
  advance(250ms);
  CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
  CHECK(truth->version() == 2);

  SUBCASE("a YAML syntax error") {
    write_text(source, "users:\n  alice: {password: a2\n");
    advance(250ms);
    CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
    auto st = store_status();
    CHECK(st.refused_edits == 1);
    CHECK(st.last_error.rfind(source + ":", 0) == 0);
    CHECK(logs.contains("edit refused, keeping the last good state: " + source
                        + ":"));
  }
  SUBCASE("a user memcached would misread, located at its line and column") {
    write_text(source, "users:\n  alice: {password: a2}\n  'c:d': {password: x}\n");
    advance(250ms);
    CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
    auto st = store_status();
    CHECK(st.refused_edits == 1);
    CHECK(st.last_error.rfind(source + ":3:3: users/c:d:", 0) == 0);
  }
  CHECK(truth->version() == 2);
  // The refusal is logged once, not at every poll.
  advance(250ms);
  advance(250ms);
  CHECK(logs.count("edit refused") == 1);
  CHECK_FALSE(logs.contains("a2")); // never a password in a log line
  // A reload request reports the refusal to its caller.
  auto refused = ask<caf::ok_atom>(sys, store, reload_atom::value);
  run();
  REQUIRE(refused->error.has_value());
  CHECK(describe(*refused->error).find("source refused: " + source)
        != std::string::npos);

  write_text(source, "users:\n  alice: {password: a3}\n");
  advance(250ms);
  CHECK(read_file(auth) == "alice:a3\n");
  CHECK(store_status().last_error.empty());
  CHECK(truth->version() == 3);
}

TEST_CASE_FIXTURE(store_fixture,
                  "a subscriber is dropped once its actor terminates") {
  start("users:\n  alice: {password: a1}\n");
  CHECK(truth->subscriber_count() == 1);
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  run();
  CHECK(truth->subscriber_count() == 0);
  // Publishing with nobody subscribed is fine.
  write_text(source, "users:\n  bob: {password: b1}\n");
  advance(250ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == "alice:a1\n");
}

TEST_CASE("source_of_truth: a late subscriber misses nothing") {
  coordinator_fixture f;
  auto truth = source_of_truth::make({{"users/a", config_value{"1"}}});
  auto changes = truth->publish({{"users/a", config_value{"2"}}});
  CHECK(changes.size() == 1);
  CHECK(truth->publish(truth->read()).empty()); // unchanged: nothing sent
  CHECK(truth->version() == 1);
  CHECK(truth->read().at("users/a") == config_value{"2"});
}
