// Restarts: which children each strategy restarts and in which order, what
// each restart type does on a normal and an abnormal exit, restart intensity,
// and nesting. Simulated time only.
#include "supervision_fixture.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

constexpr auto a = caf::atom("a");
constexpr auto b = caf::atom("b");
constexpr auto c = caf::atom("c");
constexpr auto d = caf::atom("d");

} // namespace

// -- strategies ---------------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "one_for_one restarts only the child that exited") {
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a), child(b), child(c)});
  CHECK(*events == journal{"start a", "start b", "start c"});
  auto before = children_of(s);
  forget_events();
  crash(before[b].handle, boom());
  run();
  CHECK(*events == journal{"stop b (boom)", "start b"});
  auto after = children_of(s);
  CHECK(after[a].handle == before[a].handle);
  CHECK(after[c].handle == before[c].handle);
  CHECK(after[b].handle != before[b].handle);
  CHECK(after[b].status == sup::child_status::running);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "one_for_all stops the others in reverse order, then "
                  "starts all in order") {
  auto s = spawn(flags("root", sup::strategy::one_for_all),
                 {child(a), child(b), child(c)});
  auto before = children_of(s);
  forget_events();
  crash(before[b].handle, boom());
  run();
  CHECK(*events
        == journal{"stop b (boom)", "stop c (user_shutdown)",
                   "stop a (user_shutdown)", "start a", "start b", "start c"});
  auto after = children_of(s);
  for (auto id : {a, b, c}) {
    CHECK(after[id].handle != before[id].handle);
    CHECK(after[id].status == sup::child_status::running);
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "rest_for_one restarts the child and those started after "
                  "it") {
  auto s = spawn(flags("root", sup::strategy::rest_for_one),
                 {child(a), child(b), child(c), child(d)});
  auto before = children_of(s);
  forget_events();
  crash(before[b].handle, boom());
  run();
  CHECK(*events
        == journal{"stop b (boom)", "stop d (user_shutdown)",
                   "stop c (user_shutdown)", "start b", "start c", "start d"});
  auto after = children_of(s);
  CHECK(after[a].handle == before[a].handle);
  for (auto id : {b, c, d})
    CHECK(after[id].handle != before[id].handle);
  SUBCASE("the last child takes only itself along") {
    forget_events();
    crash(after[d].handle, boom());
    run();
    CHECK(*events == journal{"stop d (boom)", "start d"});
    CHECK(handle_of(s, c) == after[c].handle);
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a temporary sibling stopped by a restart is not started "
                  "again") {
  auto s = spawn(flags("root", sup::strategy::one_for_all),
                 {child(a), child(b, sup::restart_type::temporary), child(c)});
  forget_events();
  crash(handle_of(s, c), boom());
  run();
  CHECK(*events
        == journal{"stop c (boom)", "stop b (user_shutdown)",
                   "stop a (user_shutdown)", "start a", "start c"});
  auto after = children_of(s);
  CHECK(after.count(b) == 0);
  CHECK(after.size() == 2);
}

// -- restart types ------------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "a permanent child is restarted whatever its exit reason") {
  auto s = spawn(flags("root", sup::strategy::one_for_one), {child(a)});
  forget_events();
  SUBCASE("normal") {
    exit_normally(handle_of(s, a));
    run();
    CHECK(*events == journal{"stop a (normal)", "start a"});
  }
  SUBCASE("user_shutdown") {
    caf::anon_send_exit(handle_of(s, a), caf::exit_reason::user_shutdown);
    run();
    CHECK(*events == journal{"stop a (user_shutdown)", "start a"});
  }
  SUBCASE("abnormal") {
    crash(handle_of(s, a), boom());
    run();
    CHECK(*events == journal{"stop a (boom)", "start a"});
  }
  CHECK(children_of(s)[a].status == sup::child_status::running);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a transient child is restarted only after an abnormal "
                  "exit") {
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a, sup::restart_type::transient)});
  auto first = handle_of(s, a);
  forget_events();
  SUBCASE("normal: not restarted, the spec stays") {
    exit_normally(first);
    run();
    CHECK(*events == journal{"stop a (normal)"});
    auto after = children_of(s);
    REQUIRE(after.count(a) == 1);
    CHECK(after[a].status == sup::child_status::stopped);
    CHECK(!after[a].handle);
    CHECK(logs.contains("child 'a' exited: normal; not restarted "
                        "(transient)"));
  }
  SUBCASE("user_shutdown counts as OTP's shutdown: not restarted") {
    caf::anon_send_exit(first, caf::exit_reason::user_shutdown);
    run();
    CHECK(*events == journal{"stop a (user_shutdown)"});
    CHECK(children_of(s)[a].status == sup::child_status::stopped);
  }
  SUBCASE("abnormal: restarted") {
    crash(first, boom());
    run();
    CHECK(*events == journal{"stop a (boom)", "start a"});
    CHECK(children_of(s)[a].status == sup::child_status::running);
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a temporary child is never restarted and leaves the "
                  "supervisor") {
  auto s = spawn(flags("root", sup::strategy::one_for_one),
                 {child(a, sup::restart_type::temporary), child(b)});
  forget_events();
  SUBCASE("normal") {
    exit_normally(handle_of(s, a));
    run();
    CHECK(*events == journal{"stop a (normal)"});
  }
  SUBCASE("abnormal") {
    crash(handle_of(s, a), boom());
    run();
    CHECK(*events == journal{"stop a (boom)"});
  }
  auto after = children_of(s);
  CHECK(after.count(a) == 0);
  CHECK(after.count(b) == 1);
}

// -- restart intensity --------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "3 restarts in 10 s are fine, a 4th in the window stops "
                  "every child in reverse order and the supervisor") {
  auto s = spawn(flags("root", sup::strategy::one_for_one, 3, 10s),
                 {child(a), child(b), child(c)});
  auto exit_reason = watch(s);
  auto first_a = handle_of(s, a);
  for (int i = 0; i < 3; ++i) {
    crash(handle_of(s, b), boom());
    run();
    advance(1s);
  }
  CHECK(!exit_reason->has_value());
  CHECK(handle_of(s, a) == first_a);
  forget_events();
  crash(handle_of(s, b), boom());
  run();
  // b is not started again; the others go, last started first.
  CHECK(*events
        == journal{"stop b (boom)", "stop c (user_shutdown)",
                   "stop a (user_shutdown)"});
  REQUIRE(exit_reason->has_value());
  auto& reason = **exit_reason;
  CHECK(reason == sup::sup_errc::restart_limit_reached);
  CHECK(sup::describe(reason, sys)
        == "supervisor root reached its restart limit (3 in 10s) after "
           "child 'b' failed: rename /tmp/auth.tmp -> /tmp/auth failed: Is "
           "a directory");
  for (auto id : {a, b, c})
    CHECK(!lookup(id));
  CHECK(logs.contains("[error] supervisor root: child 'b' failed: rename "
                      "/tmp/auth.tmp -> /tmp/auth failed: Is a directory; "
                      "restart limit reached [restarts in the last 10s: 4, "
                      "limit 3]"));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "restarts spread wider than the period never trip the "
                  "limit") {
  auto s = spawn(flags("root", sup::strategy::one_for_one, 3, 10s),
                 {child(a), child(b)});
  auto exit_reason = watch(s);
  forget_events();
  // One every 4 s: never more than 3 within any 10 s.
  for (int i = 0; i < 12; ++i) {
    crash(handle_of(s, b), boom());
    run();
    advance(4s);
  }
  CHECK(!exit_reason->has_value());
  CHECK(std::count(events->begin(), events->end(), "start b") == 12);
  CHECK(children_of(s)[b].status == sup::child_status::running);
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "as in OTP, a restart exactly one period ago still counts") {
  auto s = spawn(flags("root", sup::strategy::one_for_one, 1, 10s), {child(a)});
  auto exit_reason = watch(s);
  crash(handle_of(s, a), boom());
  run();
  SUBCASE("at the period: 2 restarts in the window, limit 1") {
    advance(10s);
    crash(handle_of(s, a), boom());
    run();
    REQUIRE(exit_reason->has_value());
    CHECK(**exit_reason == sup::sup_errc::restart_limit_reached);
  }
  SUBCASE("just past the period: the first one has left the window") {
    advance(10s + 1ns);
    crash(handle_of(s, a), boom());
    run();
    CHECK(!exit_reason->has_value());
  }
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "intensity 0 gives up at the first restart") {
  auto s = spawn(flags("root", sup::strategy::one_for_one, 0, 10s),
                 {child(a, sup::restart_type::transient)});
  auto exit_reason = watch(s);
  SUBCASE("no restart needed, no restart counted") {
    exit_normally(handle_of(s, a));
    run();
    CHECK(!exit_reason->has_value());
  }
  SUBCASE("a restart needed") {
    crash(handle_of(s, a), boom());
    run();
    REQUIRE(exit_reason->has_value());
    CHECK(**exit_reason == sup::sup_errc::restart_limit_reached);
  }
}

// -- nesting ------------------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "a nested supervisor that gives up is restarted by its "
                  "parent") {
  constexpr auto sub = caf::atom("sub");
  constexpr auto x = caf::atom("x");
  constexpr auto y = caf::atom("y");
  auto root = spawn(flags("root", sup::strategy::one_for_one),
                    {child(a),
                     sup::supervisor_child(
                       sub, flags("sub", sup::strategy::one_for_one, 1, 10s),
                       {child(x), child(y)})});
  auto root_exit = watch(root);
  CHECK(*events == journal{"start a", "start x", "start y"});
  auto first_a = handle_of(root, a);
  auto first_sub = caf::actor_cast<sup::supervisor_actor>(handle_of(root, sub));
  REQUIRE(first_sub);
  auto sub_exit = watch(first_sub);
  forget_events();
  crash(handle_of(first_sub, x), boom());
  run();
  crash(handle_of(first_sub, x), boom());
  run();
  // The sub supervisor gave up: y stopped, then it exited; its parent
  // started a new one, which started x and y afresh.
  CHECK(*events
        == journal{"stop x (boom)", "start x", "stop x (boom)",
                   "stop y (user_shutdown)", "start x", "start y"});
  REQUIRE(sub_exit->has_value());
  CHECK(**sub_exit == sup::sup_errc::restart_limit_reached);
  CHECK(!root_exit->has_value());
  auto second_sub = handle_of(root, sub);
  CHECK(second_sub != caf::actor_cast<caf::actor>(first_sub));
  CHECK(lookup(sub) == second_sub);
  CHECK(handle_of(root, a) == first_a);
  CHECK(logs.contains("[warning] supervisor root: child 'sub' exited: "
                      "supervisor sub reached its restart limit (1 in 10s) "
                      "after child 'x' failed: rename /tmp/auth.tmp -> "
                      "/tmp/auth failed: Is a directory; restarting it"));
  CHECK(logs.contains("[info] supervisor root: restarted child 'sub'"));
}

TEST_CASE_FIXTURE(supervision_fixture,
                  "a parent whose nested supervisor keeps giving up gives "
                  "up in turn, naming it") {
  constexpr auto sub = caf::atom("sub");
  constexpr auto x = caf::atom("x");
  auto root = spawn(
    flags("root", sup::strategy::one_for_one, 1, 10s),
    {child(a),
     sup::supervisor_child(
       sub, flags("sub", sup::strategy::one_for_one, 0, 10s), {child(x)})});
  auto root_exit = watch(root);
  for (int i = 0; i < 2; ++i) {
    auto inner = caf::actor_cast<sup::supervisor_actor>(handle_of(root, sub));
    crash(handle_of(inner, x), boom());
    run();
  }
  REQUIRE(root_exit->has_value());
  CHECK(sup::describe(**root_exit, sys)
        == "supervisor root reached its restart limit (1 in 10s) after "
           "child 'sub' failed: supervisor sub reached its restart limit (0 "
           "in 10s) after child 'x' failed: rename /tmp/auth.tmp -> "
           "/tmp/auth failed: Is a directory");
  CHECK(events->back() == "stop a (user_shutdown)");
}

// -- reports ------------------------------------------------------------------

TEST_CASE_FIXTURE(supervision_fixture,
                  "every exit and restart is logged with the child, the "
                  "reason and the restarts in the window") {
  auto s = spawn(flags("root", sup::strategy::one_for_all),
                 {child(a), child(b, sup::restart_type::transient)});
  crash(handle_of(s, a), boom());
  run();
  advance(1s);
  crash(handle_of(s, a), boom());
  run();
  exit_normally(handle_of(s, b));
  run();
  auto why = "rename /tmp/auth.tmp -> /tmp/auth failed: Is a directory";
  for (auto n : {"1", "2"}) {
    auto window = std::string{"[restarts in the last 10s: "} + n + ", limit 3]";
    CHECK(logs.count("[warning] supervisor root: child 'a' exited: "
                     + std::string{why} + "; restarting it " + window)
          == 1);
    // The child and the sibling restarted with it.
    for (auto id : {"'a'", "'b'"})
      CHECK(logs.count("[info] supervisor root: restarted child "
                       + std::string{id} + " after child 'a' exited: " + why
                       + " " + window)
            == 1);
  }
  CHECK(logs.count("[info] supervisor root: child 'b' exited: normal; not "
                   "restarted (transient) [restarts in the last 10s: 2, "
                   "limit 3]")
        == 1);
}
