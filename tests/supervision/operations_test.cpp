// Starting and stopping: the shutdown protocol, start failures, named
// children, the client operations, retries and the restart backoff.
// Simulated time only.
#include <iostream>
#include <sstream>

#include "supervision_fixture.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

constexpr auto a = caf::atom("a");
constexpr auto b = caf::atom("b");
constexpr auto c = caf::atom("c");

bool is(const caf::error& err, sup::sup_errc code) {
  return err == code;
}

} // namespace

// -- the shutdown protocol ----------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "a child that ignores the exit request is killed after its "
                  "timeout, and not before") {
  auto stubborn = child(a, true);
  stubborn.shutdown = sup::shutdown_policy::timeout(5s);
  auto s = spawn(flags("root", sup::strategy::one_for_one), {stubborn});
  auto gone = watch(handle_of(s, a));
  forget_events();
  auto reply = ask_later<caf::ok_atom>(s, sup::terminate_child_atom::value, a);
  run();
  CHECK(!gone->has_value());
  CHECK(!reply->has_value());
  advance(5s - 1ns);
  CHECK(!gone->has_value());
  CHECK(!reply->has_value());
  CHECK(!logs.contains("killing it"));
  advance(1ns);
  REQUIRE(gone->has_value());
  CHECK(**gone == caf::exit_reason::kill);
  REQUIRE(reply->has_value());
  CHECK(reply->value());
  CHECK(*events == journal{"stop a (kill)"});
  CHECK(logs.contains(
    "[warning] supervisor root: child 'a' did not stop within 5s; killing it"));
  // Stopped on request: not restarted.
  CHECK(children_of(s)[a].status == sup::child_status::stopped);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "the timeout of a child that went in time harms no other "
                  "child") {
  auto obedient = child(a);
  obedient.shutdown = sup::shutdown_policy::timeout(5s);
  auto stubborn = child(b, true);
  stubborn.shutdown = sup::shutdown_policy::timeout(5s);
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {obedient, stubborn});
  auto b_gone = watch(handle_of(s, b));
  CHECK(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a));
  advance(1s);
  auto reply = ask_later<caf::ok_atom>(s, sup::terminate_child_atom::value, b);
  run();
  // a's timer (armed at 0 s) fires at 5 s: stale, b is not killed before 6 s.
  advance(4s);
  CHECK(!b_gone->has_value());
  CHECK(!reply->has_value());
  advance(1s);
  REQUIRE(b_gone->has_value());
  CHECK(**b_gone == caf::exit_reason::kill);
  CHECK(reply->has_value());
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "brutal_kill kills at once, infinity waits as long as it "
                  "takes") {
  SUBCASE("brutal_kill") {
    auto stubborn = child(a, true);
    stubborn.shutdown = sup::shutdown_policy::brutal_kill();
    auto s = spawn(flags("root", sup::strategy::one_for_one), {stubborn});
    forget_events();
    CHECK(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a));
    CHECK(*events == journal{"stop a (kill)"});
  }
  SUBCASE("infinity") {
    auto stubborn = child(a, true);
    stubborn.shutdown = sup::shutdown_policy::infinity();
    auto s = spawn(flags("root", sup::strategy::one_for_one), {stubborn});
    auto h = handle_of(s, a);
    forget_events();
    auto reply = ask_later<caf::ok_atom>(s, sup::terminate_child_atom::value,
                                         a);
    advance(std::chrono::hours(1));
    CHECK(!reply->has_value());
    CHECK(events->empty());
    exit_normally(h);
    run();
    CHECK(reply->has_value());
    CHECK(*events == journal{"stop a (normal)"});
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "an exit request stops the children in reverse start order, "
                  "each by its policy, then the supervisor") {
  auto stubborn = child(b, true);
  stubborn.shutdown = sup::shutdown_policy::timeout(2s);
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a), stubborn, child(c)});
  auto gone = watch(s);
  forget_events();
  caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  run();
  CHECK(*events == journal{"stop c (user_shutdown)"});
  CHECK(!gone->has_value());
  advance(2s);
  CHECK(*events
        == journal{"stop c (user_shutdown)", "stop b (kill)",
                   "stop a (user_shutdown)"});
  REQUIRE(gone->has_value());
  CHECK(**gone == caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a supervisor that is killed takes its children along") {
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a, true), child(b)});
  forget_events();
  caf::anon_send_exit(s, caf::exit_reason::kill);
  run();
  std::sort(events->begin(), events->end());
  CHECK(*events == journal{"stop a (kill)", "stop b (kill)"});
}

// -- start failures -----------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "a start failure names the child and leaves no child "
                  "running") {
  auto s = sup::spawn_supervisor(
    sys, flags("root", sup::strategy::one_for_one),
    {child(a), sup::worker_child(b, failing("b", boom())), child(c)});
  supervisors.push_back(caf::actor_cast<caf::actor>(s));
  auto ready = ask_later<caf::ok_atom>(s, sup::ready_atom::value);
  auto gone = watch(s);
  run();
  // c is never started; a, started before b, is stopped again.
  CHECK(*events == journal{"start a", "fail b", "stop a (user_shutdown)"});
  REQUIRE(ready->has_value());
  REQUIRE(!ready->value());
  auto& err = ready->value().error();
  CHECK(is(err, sup::sup_errc::start_failed));
  CHECK(sup::describe(err, sys)
        == "supervisor root failed to start child 'b': rename "
           "/tmp/auth.tmp -> /tmp/auth failed: Is a directory");
  REQUIRE(gone->has_value());
  CHECK(sup::describe(**gone, sys) == sup::describe(err, sys));
  for (auto id : {a, b, c})
    CHECK(!lookup(id));
  CHECK(logs.contains("[error] supervisor root: failed to start child 'b'"));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a nested supervisor's start failure fails its parent's "
                  "start") {
  constexpr auto sub = caf::atom("sub");
  constexpr auto x = caf::atom("x");
  constexpr auto y = caf::atom("y");
  auto root = sup::spawn_supervisor(
    sys, flags("root", sup::strategy::one_for_one),
    {child(a),
     sup::supervisor_child(sub, flags("sub", sup::strategy::one_for_one),
                           {child(x),
                            sup::worker_child(y, failing("y", boom()))}),
     child(c)});
  supervisors.push_back(caf::actor_cast<caf::actor>(root));
  auto ready = ask_later<caf::ok_atom>(root, sup::ready_atom::value);
  run();
  CHECK(*events
        == journal{"start a", "start x", "fail y", "stop x (user_shutdown)",
                   "stop a (user_shutdown)"});
  REQUIRE(ready->has_value());
  REQUIRE(!ready->value());
  CHECK(sup::describe(ready->value().error(), sys)
        == "supervisor root failed to start child 'sub': supervisor sub "
           "failed to start child 'y': rename /tmp/auth.tmp -> /tmp/auth "
           "failed: Is a directory");
  for (auto id : {a, sub, x, y, c})
    CHECK(!lookup(id));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a first child that fails leaves nothing to stop") {
  auto s = sup::spawn_supervisor(sys, flags("root", sup::strategy::one_for_one),
                                 {sup::worker_child(a, failing("a", boom())),
                                  child(b)});
  supervisors.push_back(caf::actor_cast<caf::actor>(s));
  auto gone = watch(s);
  CHECK(*events == journal{"fail a"});
  REQUIRE(gone->has_value());
  CHECK(is(**gone, sup::sup_errc::start_failed));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a start function that throws is a start failure") {
  auto throwing = sup::worker_child(
    a, [](caf::actor_system&) -> caf::expected<caf::actor> {
      throw std::runtime_error("no such file");
    });
  auto s = spawn(flags("root", sup::strategy::one_for_one), {throwing});
  auto gone = watch(s);
  REQUIRE(gone->has_value());
  CHECK(sup::describe(**gone)
        == "supervisor root failed to start child 'a': start function "
           "threw: no such file");
}

TEST_CASE_FIXTURE(supervision_fixture, "unusable specs fail the start") {
  std::vector<sup::child_spec> specs;
  std::string expected;
  SUBCASE("duplicate ids") {
    specs = {child(a), child(a)};
    expected = "supervisor root refused child 'a': duplicate child id";
  }
  SUBCASE("no start function") {
    specs = {sup::worker_child(a, nullptr)};
    expected = "supervisor root refused child 'a': the child has no start "
               "function";
  }
  auto s = spawn(flags("root", sup::strategy::one_for_one), specs);
  auto gone = watch(s);
  REQUIRE(gone->has_value());
  CHECK(sup::describe(**gone) == expected);
  CHECK(events->empty());
}

// -- named children -----------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "a named lookup reaches the new incarnation after a "
                  "restart, never the dead one") {
  auto s = spawn(flags("root", sup::strategy::one_for_all),
                 {child(a), child(b)});
  auto first_a = lookup(a);
  auto first_b = lookup(b);
  REQUIRE(first_a == handle_of(s, a));
  REQUIRE(first_b == handle_of(s, b));
  auto a_gone = watch(first_a);
  auto b_gone = watch(first_b);
  crash(first_a, boom());
  // One message at a time: at no point does a name lead to a dead actor.
  size_t steps = 0;
  while (sched.try_run_once()) {
    ++steps;
    CHECK_FALSE((a_gone->has_value() && lookup(a) == first_a));
    CHECK_FALSE((b_gone->has_value() && lookup(b) == first_b));
  }
  CHECK(steps > 2);
  REQUIRE(a_gone->has_value());
  REQUIRE(b_gone->has_value());
  CHECK(lookup(a) == handle_of(s, a));
  CHECK(lookup(b) == handle_of(s, b));
  CHECK(lookup(a) != first_a);
  CHECK(lookup(b) != first_b);
  CHECK(lookup(a) != nullptr);
}

namespace {

using get_id_atom = caf::atom_constant<caf::atom("t_get_id")>;
using typed_worker
  = caf::typed_actor<caf::replies_to<get_id_atom>::with<caf::actor_id>>;

typed_worker::behavior_type typed_worker_impl(typed_worker::pointer self) {
  return {[self](get_id_atom) { return self->id(); }};
}

} // namespace

TEST_CASE_FIXTURE(supervision_fixture,
                  "a typed actor is a child like any other, and reachable "
                  "by name with its type") {
  // As the writer will be: make_start casts the typed handle.
  auto typed = sup::worker_child(a, sup::make_start([](caf::actor_system& sys) {
                                   return sys.spawn(typed_worker_impl);
                                 }));
  auto s = spawn(flags("root", sup::strategy::one_for_one), {typed});
  auto by_name = sys.registry().get<typed_worker>(a);
  REQUIRE(by_name);
  auto id = ask<caf::actor_id>(by_name, get_id_atom::value);
  REQUIRE(id);
  CHECK(*id == handle_of(s, a).id());
  SUBCASE("an expected handle works too, and so does its error") {
    auto res = ask<caf::actor>(
      s, sup::start_child_atom::value,
      sup::worker_child(b, sup::make_start([](caf::actor_system&) {
                          return caf::expected<typed_worker>{boom()};
                        })));
    REQUIRE(!res);
    CHECK(is(res.error(), sup::sup_errc::start_failed));
  }
}

TEST_CASE_FIXTURE(supervision_fixture, "a child can opt out of the registry") {
  auto anonymous = child(a);
  anonymous.register_name = false;
  auto s = spawn(flags("root", sup::strategy::one_for_one), {anonymous});
  CHECK(handle_of(s, a) != nullptr);
  CHECK(!lookup(a));
}

// -- operations ---------------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "which_children and count_children report the specs in "
                  "start order") {
  constexpr auto sub = caf::atom("sub");
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a, sup::restart_type::transient),
                  sup::supervisor_child(sub, {}, {child(c)}), child(b)});
  CHECK(ask<caf::ok_atom>(s, sup::ready_atom::value));
  auto xs = ask<std::vector<sup::child_info>>(s,
                                              sup::which_children_atom::value);
  REQUIRE(xs);
  REQUIRE(xs->size() == 3);
  CHECK((*xs)[0].id == a);
  CHECK((*xs)[0].restart == sup::restart_type::transient);
  CHECK((*xs)[1].id == sub);
  CHECK((*xs)[1].type == sup::child_type::supervisor);
  CHECK((*xs)[2].id == b);
  for (auto& x : *xs) {
    CHECK(x.status == sup::child_status::running);
    CHECK(x.handle != nullptr);
  }
  exit_normally((*xs)[0].handle);
  run();
  auto n = ask<sup::child_counts>(s, sup::count_children_atom::value);
  REQUIRE(n);
  CHECK(n->specs == 3);
  CHECK(n->active == 2);
  CHECK(n->supervisors == 1);
  CHECK(n->workers == 2);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "start_child adds a child at the end of the start order") {
  auto s = spawn(flags("root", sup::strategy::rest_for_one), {child(a)});
  forget_events();
  auto h = ask<caf::actor>(s, sup::start_child_atom::value, child(b));
  REQUIRE(h);
  CHECK(*h == handle_of(s, b));
  CHECK(lookup(b) == *h);
  CHECK(*events == journal{"start b"});
  // It is supervised like the others: rest_for_one from a takes it along.
  forget_events();
  crash(handle_of(s, a), boom());
  run();
  CHECK(*events
        == journal{"stop a (boom)", "stop b (user_shutdown)", "start a",
                   "start b"});
  SUBCASE("refusals") {
    auto again = ask<caf::actor>(s, sup::start_child_atom::value, child(b));
    REQUIRE(!again);
    CHECK(is(again.error(), sup::sup_errc::child_already_started));
    REQUIRE(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, b));
    again = ask<caf::actor>(s, sup::start_child_atom::value, child(b));
    REQUIRE(!again);
    CHECK(is(again.error(), sup::sup_errc::child_already_present));
  }
  SUBCASE("a failed start keeps no spec") {
    auto res = ask<caf::actor>(s, sup::start_child_atom::value,
                               sup::worker_child(c, failing("c", boom())));
    REQUIRE(!res);
    CHECK(sup::describe(res.error(), sys)
          == "supervisor root failed to start child 'c': rename "
             "/tmp/auth.tmp -> /tmp/auth failed: Is a directory");
    CHECK(children_of(s).count(c) == 0);
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "terminate_child, restart_child and delete_child follow "
                  "OTP") {
  auto s = spawn(flags("root", sup::strategy::one_for_all),
                 {child(a), child(b)});
  auto first_a = handle_of(s, a);
  auto first_b = handle_of(s, b);
  forget_events();
  // Terminating is not an exit to restart from, whatever the strategy.
  REQUIRE(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a));
  CHECK(*events == journal{"stop a (user_shutdown)"});
  CHECK(handle_of(s, b) == first_b);
  CHECK(children_of(s)[a].status == sup::child_status::stopped);
  CHECK(!lookup(a));
  // restart_child only on a stopped child.
  auto running = ask<caf::actor>(s, sup::restart_child_atom::value, b);
  REQUIRE(!running);
  CHECK(is(running.error(), sup::sup_errc::child_running));
  auto second_a = ask<caf::actor>(s, sup::restart_child_atom::value, a);
  REQUIRE(second_a);
  CHECK(*second_a != first_a);
  CHECK(lookup(a) == *second_a);
  // delete_child only on a stopped child.
  auto refused = ask<caf::ok_atom>(s, sup::delete_child_atom::value, a);
  REQUIRE(!refused);
  CHECK(is(refused.error(), sup::sup_errc::child_running));
  REQUIRE(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a));
  REQUIRE(ask<caf::ok_atom>(s, sup::delete_child_atom::value, a));
  CHECK(children_of(s).count(a) == 0);
  // Unknown ids.
  for (auto err :
       {ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a).error(),
        ask<caf::actor>(s, sup::restart_child_atom::value, a).error(),
        ask<caf::ok_atom>(s, sup::delete_child_atom::value, a).error()}) {
    CHECK(is(err, sup::sup_errc::child_not_found));
    CHECK(sup::describe(err) == "supervisor root has no child 'a'");
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "requests that arrive while a child is being stopped are "
                  "answered after it") {
  auto stubborn = child(a, true);
  stubborn.shutdown = sup::shutdown_policy::timeout(3s);
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {stubborn, child(b)});
  auto stopping = ask_later<caf::ok_atom>(s, sup::terminate_child_atom::value,
                                          a);
  auto listing = ask_later<std::vector<sup::child_info>>(
    s, sup::which_children_atom::value);
  run();
  CHECK(!stopping->has_value());
  CHECK(!listing->has_value());
  advance(3s);
  REQUIRE(stopping->has_value());
  REQUIRE(listing->has_value());
  REQUIRE(listing->value());
  CHECK(listing->value()->at(0).status == sup::child_status::stopped);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "requests still queued when the supervisor exits are "
                  "refused") {
  auto stubborn = child(a, true);
  stubborn.shutdown = sup::shutdown_policy::timeout(3s);
  auto s = spawn(flags("root", sup::strategy::one_for_one), {stubborn});
  caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  run();
  auto late = ask_later<sup::child_counts>(s, sup::count_children_atom::value);
  run();
  CHECK(!late->has_value());
  advance(3s);
  REQUIRE(late->has_value());
  REQUIRE(!late->value());
  CHECK(is(late->value().error(), sup::sup_errc::supervisor_stopped));
  CHECK(sup::describe(late->value().error())
        == "supervisor root stopped: user_shutdown");
}

// -- failed restarts and the backoff ------------------------------------------

namespace {

/// A start function that fails on the calls listed in `failures` (1-based).
sup::start_function flaky(sup::start_function inner,
                          std::vector<int> failures) {
  auto calls = std::make_shared<int>(0);
  return [=](caf::actor_system& sys) -> caf::expected<caf::actor> {
    if (std::count(failures.begin(), failures.end(), ++*calls) > 0)
      return caf::make_error(caf::sec::runtime_error);
    return inner(sys);
  };
}

} // namespace

TEST_CASE_FIXTURE(supervision_fixture,
                  "a failed restart is tried again and counts as a restart") {
  SUBCASE("it works the second time") {
    auto s = spawn(flags("root", sup::strategy::one_for_one),
                   {sup::worker_child(a, flaky(worker("a"), {2}))});
    auto gone = watch(s);
    forget_events();
    crash(handle_of(s, a), boom());
    run();
    CHECK(*events == journal{"stop a (boom)", "start a"});
    CHECK(!gone->has_value());
    CHECK(children_of(s)[a].status == sup::child_status::running);
    CHECK(logs.contains("restarted child 'a' after child 'a' failed to "
                        "start: "));
    CHECK(logs.contains("[restarts in the last 10s: 2, limit 3]"));
  }
  SUBCASE("it never works: the supervisor gives up, naming it") {
    auto s = spawn(flags("root", sup::strategy::one_for_one),
                   {sup::worker_child(a, flaky(worker("a"), {2, 3, 4, 5}))});
    auto gone = watch(s);
    crash(handle_of(s, a), boom());
    run();
    REQUIRE(gone->has_value());
    CHECK(is(**gone, sup::sup_errc::restart_limit_reached));
    CHECK(sup::describe(**gone).find("after child 'a' failed: ")
          != std::string::npos);
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "with a backoff, restarts wait min, doubling up to max, "
                  "and min again after a stable run") {
  auto spec = child(a);
  spec.backoff.min = 100ms;
  spec.backoff.max = 400ms;
  spec.backoff.reset_after = 10s;
  auto s = spawn(flags("root", sup::strategy::one_for_one, 100, 10s), {spec});
  forget_events();
  for (auto delay : {100ms, 200ms, 400ms, 400ms}) {
    crash(handle_of(s, a), boom());
    run();
    CHECK(children_of(s)[a].status == sup::child_status::restarting);
    CHECK(!lookup(a));
    advance(delay - 1ns);
    CHECK(children_of(s)[a].status == sup::child_status::restarting);
    advance(1ns);
    CHECK(children_of(s)[a].status == sup::child_status::running);
  }
  CHECK(std::count(events->begin(), events->end(), "start a") == 4);
  // Stable for 10 s: the next restart waits min again.
  advance(10s);
  crash(handle_of(s, a), boom());
  run();
  advance(100ms);
  CHECK(children_of(s)[a].status == sup::child_status::running);
  CHECK(logs.contains("restarting it in 400ms"));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a child waiting for its restart can be terminated, not "
                  "deleted or restarted") {
  auto spec = child(a);
  spec.backoff.min = 1s;
  auto s = spawn(flags("root", sup::strategy::one_for_one), {spec});
  crash(handle_of(s, a), boom());
  run();
  for (auto err :
       {ask<caf::ok_atom>(s, sup::delete_child_atom::value, a).error(),
        ask<caf::actor>(s, sup::restart_child_atom::value, a).error()})
    CHECK(is(err, sup::sup_errc::child_restarting));
  REQUIRE(ask<caf::ok_atom>(s, sup::terminate_child_atom::value, a));
  forget_events();
  advance(1s);
  // The pending restart was called off.
  CHECK(events->empty());
  CHECK(children_of(s)[a].status == sup::child_status::stopped);
}

// -- vocabulary ---------------------------------------------------------------

TEST_CASE("child ids are checked atoms") {
  CHECK(sup::make_child_id("writer").value() == caf::atom("writer"));
  CHECK(sup::make_child_id("passwords1").value() == caf::atom("passwords1"));
  for (auto bad : {"", "memcached_passwords", "a-b", "a b"}) {
    auto id = sup::make_child_id(bad);
    REQUIRE(!id);
    CHECK(id.error() == sup::sup_errc::invalid_child_id);
  }
  CHECK(sup::describe(sup::make_child_id("memcached_passwords").error())
        == "invalid child id \"memcached_passwords\": a child id has at most "
           "10 characters");
}

TEST_CASE("exit reasons read as text") {
  CHECK(sup::describe(caf::error{}) == "normal");
  CHECK(sup::describe(caf::exit_reason::user_shutdown) == "user_shutdown");
  CHECK(sup::describe(caf::exit_reason::kill) == "kill");
  CHECK(sup::is_normal_exit(caf::error{}));
  CHECK(sup::is_normal_exit(caf::exit_reason::user_shutdown));
  CHECK(!sup::is_normal_exit(caf::exit_reason::kill));
  CHECK(sup::format_duration(10s) == "10s");
  CHECK(sup::format_duration(250ms) == "250ms");
  CHECK(sup::format_duration(5us) == "5us");
  CHECK(sup::format_duration(caf::timespan{0}) == "0ns");
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "errors of other categories read as the program's actor "
                  "system renders them, inside supervisor errors too") {
  // boom() is of the mcfg category, which this system knows and the
  // supervision library does not.
  auto err = boom();
  auto wrapped = sup::make_sup_error(sup::sup_errc::start_failed, "root", a,
                                     err);
  auto project_text = describe(err);
  CHECK(project_text.find("Is a directory") != std::string::npos);
  CHECK(sup::describe(err, sys) == project_text);
  CHECK(sup::describe(wrapped, sys)
        == "supervisor root failed to start child 'a': " + project_text);
  // Without a system: CAF's own text, the category and context as they are.
  CHECK(sup::describe(err) == caf::to_string(err));
  CHECK(sup::describe(wrapped)
        == "supervisor root failed to start child 'a': " + caf::to_string(err));
  // CAF's categories read the same either way.
  CHECK(sup::describe(caf::sec::request_timeout, sys)
        == "system_error(request_timeout)");
  CHECK(sup::describe(caf::sec::request_timeout)
        == "system_error(request_timeout)");
}

// -- the log hook -------------------------------------------------------------

namespace {

struct line {
  sup::log::level lvl;
  std::string who;
  std::string text;
};

} // namespace

TEST_CASE_FIXTURE(supervision_fixture,
                  "a supervisor's lines go to the installed handler, with "
                  "their levels, and nowhere else") {
  std::vector<line> lines;
  auto previous = sup::log::set_handler(
    [&lines](sup::log::level lvl, std::string_view who, std::string_view text) {
      lines.push_back({lvl, std::string{who}, std::string{text}});
    });
  auto s = spawn(flags("root", sup::strategy::one_for_one), {child(a)});
  crash(handle_of(s, a), boom());
  run();
  sup::log::set_handler(std::move(previous));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].lvl == sup::log::level::info);
  CHECK(lines[0].who == "supervisor root");
  CHECK(lines[0].text == "started child 'a'");
  CHECK(lines[1].text
        == "started 1 child (one_for_one, at most 3 restarts in 10s)");
  CHECK(lines[2].lvl == sup::log::level::warning);
  CHECK(lines[2].text
        == "child 'a' exited: " + describe(boom())
             + "; restarting it [restarts in the last 10s: 1, limit 3]");
  CHECK(lines[3].lvl == sup::log::level::info);
  CHECK(lines[3].text
        == "restarted child 'a' after child 'a' exited: " + describe(boom())
             + " [restarts in the last 10s: 1, limit 3]");
  // The fixture's route to mcfg's log was replaced meanwhile.
  CHECK(logs.lines.empty());
}

TEST_CASE("without a handler, a supervisor's lines go to stderr") {
  auto previous = sup::log::set_handler({});
  std::ostringstream err;
  auto* old_buf = std::cerr.rdbuf(err.rdbuf());
  sup::log::warning("supervisor root", "child 'a' exited: kill");
  sup::log::info("supervisor root", "restarted child 'a'");
  std::cerr.rdbuf(old_buf);
  sup::log::set_handler(std::move(previous));
  CHECK(err.str()
        == "[warning] supervisor root: child 'a' exited: kill\n"
           "[info] supervisor root: restarted child 'a'\n");
}

TEST_CASE("mcfgd's route puts the supervisors' lines in mcfg's log, "
          "filtered by its level") {
  log_capture logs{log::level::warning};
  auto previous = log_supervisors_to_mcfg_log();
  sup::log::error("supervisor root", "gave up");
  sup::log::warning("supervisor files", "child 'file1' exited: kill");
  sup::log::info("supervisor files", "restarted child 'file1'");
  sup::log::set_handler(std::move(previous));
  CHECK(logs.lines
        == std::vector<std::string>{
          "[error] supervisor root: gave up",
          "[warning] supervisor files: child 'file1' exited: kill"});
}

TEST_CASE("the backoff doubles from min and stops at max") {
  sup::restart_backoff off;
  CHECK(!off.enabled());
  CHECK(off.delay(3) == caf::timespan{0});
  sup::restart_backoff on;
  on.min = 100ms;
  on.max = 1s;
  CHECK(on.delay(0) == 100ms);
  CHECK(on.delay(1) == 200ms);
  CHECK(on.delay(3) == 800ms);
  CHECK(on.delay(4) == 1s);
  CHECK(on.delay(1000) == 1s);
}
