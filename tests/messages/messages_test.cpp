#include <doctest/doctest.h>

#include <cerrno>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/writer_status.hpp"
#include "support/coordinator_fixture.hpp"

using namespace mcfg;

namespace {

template <class T>
T round_trip(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(x));
  T y;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(y));
  return y;
}

} // namespace

TEST_CASE_FIXTURE(test::coordinator_fixture,
                  "a config_change crosses the wire unchanged") {
  config_change in{"users/alice", config_value{std::string{"x"}}, false};
  auto dict = caf::config_value::dictionary{};
  dict.emplace("roles", config_value{caf::config_value::list{
                          config_value{std::string{"admin"}}}});
  in.value = config_value{dict};
  auto out = round_trip(sys, in);
  CHECK(out == in);
  config_change removed{"users/bob", {}, true};
  CHECK(round_trip(sys, removed) == removed);
  CHECK_FALSE(round_trip(sys, removed) == in);
}

TEST_CASE_FIXTURE(test::coordinator_fixture,
                  "a config_update crosses the wire unchanged, every change "
                  "in order") {
  config_update in{7,
                   {{"users/alice", config_value{std::string{"x"}}, false},
                    {"users/bob", {}, true}}};
  auto out = round_trip(sys, in);
  CHECK(out == in);
  CHECK(out.version == 7);
  REQUIRE(out.changes.size() == 2);
  CHECK(out.changes[1].removed);
  CHECK_FALSE(round_trip(sys, config_update{8, in.changes}) == in);
}

TEST_CASE_FIXTURE(test::coordinator_fixture,
                  "a writer_status crosses the wire unchanged") {
  writer_status in;
  in.path = "/etc/memcached/auth";
  in.applied_version = 42;
  in.phase = writer_phase::retrying;
  in.attempts = 3;
  in.last_error = "rename failed";
  in.module["users"] = "2";
  auto out = round_trip(sys, in);
  CHECK(out.path == in.path);
  CHECK(out.applied_version == 42);
  CHECK(out.phase == writer_phase::retrying);
  CHECK(out.attempts == 3);
  CHECK(out.last_error == in.last_error);
  CHECK(out.module == in.module);
}

TEST_CASE_FIXTURE(test::coordinator_fixture,
                  "errors render as operation, path and OS error") {
  auto err = make_file_error("rename", "/tmp/a.tmp -> /tmp/a", EISDIR);
  CHECK(describe(err) == "rename /tmp/a.tmp -> /tmp/a failed: Is a directory");
  // The actor system renders it the same way (exit reasons in logs).
  CHECK(sys.render(err).find("Is a directory") != std::string::npos);
  auto gave_up = caf::make_error(errc::write_deadline_exceeded, "/tmp/a",
                                 "rename", "/tmp/a.tmp -> /tmp/a",
                                 "Is a directory", "10s");
  CHECK(describe(gave_up)
        == "gave up writing /tmp/a after 10s of failures: last rename "
           "/tmp/a.tmp -> /tmp/a failed: Is a directory");
  CHECK(describe(caf::error{}) == "no error");
}

TEST_CASE("writer phases have names") {
  CHECK(std::string{to_string(writer_phase::idle)} == "idle");
  CHECK(std::string{to_string(writer_phase::pending)} == "pending");
  CHECK(std::string{to_string(writer_phase::retrying)} == "retrying");
}
