// node.yaml: the small parsers, defaults, resolution of relative paths, and
// every kind of bad input with its line, column and key.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>

#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/modules/memcached_permissions.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/source/source_document.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::string minimal = "source: cluster.yaml\n"
                            "files:\n"
                            "  - module: memcached_passwords\n"
                            "    path: auth\n";

/// Parses `text` as /etc/mcfg/node.yaml.
node_config_result parse(const std::string& text) {
  return parse_node_config(text, "/etc/mcfg/node.yaml");
}

node_config ok(const std::string& text) {
  auto r = parse(text);
  INFO(to_string(r.errors));
  REQUIRE(r.ok());
  CHECK(r.errors.empty());
  return *r.value;
}

/// The single error of `text` (shown as node.yaml).
located_error only_error(const std::string& text) {
  auto r = parse_node_config(text, "node.yaml");
  INFO(to_string(r.errors));
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.value.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].file == "node.yaml");
  return r.errors[0];
}

/// `minimal` with `extra` appended to its only file entry.
std::string with_file_fields(const std::string& extra) {
  return minimal + extra;
}

} // namespace

// -- durations, modes, signals, addresses -------------------------------------

TEST_CASE("parse_duration: an integer and a unit") {
  CHECK(parse_duration("100ms") == caf::timespan{100ms});
  CHECK(parse_duration("10s") == caf::timespan{10s});
  CHECK(parse_duration("2m") == caf::timespan{2min});
  CHECK(parse_duration("500us") == caf::timespan{500us});
  CHECK(parse_duration("250ns") == caf::timespan{250ns});
  CHECK(parse_duration("1h") == caf::timespan{1h});
  CHECK(parse_duration("0s") == caf::timespan{0});
  CHECK(parse_duration("0010ms") == caf::timespan{10ms});
  CHECK(parse_duration("9223372036854775807ns")
        == caf::timespan{std::numeric_limits<int64_t>::max()});
}

TEST_CASE("parse_duration: anything else is nothing") {
  for (const char* bad :
       {"10", "ten s", "-5s", "+5s", "", "s", "ms", "10 s", " 10s", "10s ",
        "1.5s", "10S", "10sec", "10mins", "1d", "0x10s", "5s5ms",
        // overflow
        "9223372036854775808ns", "9223372036855ms", "2562048h",
        "18446744073709551616s", "99999999999999999999999999s"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
  // Just below the overflow edges.
  CHECK(parse_duration("9223372036854ms").has_value());
  CHECK(parse_duration("2562047h").has_value());
}

TEST_CASE("parse_mode: octal with its leading 0, up to 0777") {
  CHECK(parse_mode("0600") == mode_t{0600});
  CHECK(parse_mode("00640") == mode_t{0640});
  CHECK(parse_mode("0o644") == mode_t{0644});
  CHECK(parse_mode("0777") == mode_t{0777});
  CHECK(parse_mode("00") == mode_t{0});
  for (const char* bad :
       {"600", "384", "0800", "0o", "0", "", "rw", "01777", "04755", "0o1000",
        "0x180", "-0600", "0600 ", "000600"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_mode(bad).has_value());
  }
}

TEST_CASE("parse_signal: a few names, with or without SIG") {
  auto hup = parse_signal("HUP");
  REQUIRE(hup);
  CHECK(hup->signal == SIGHUP);
  CHECK(hup->name == "SIGHUP");
  CHECK(parse_signal("SIGHUP")->signal == SIGHUP);
  CHECK(parse_signal("hup")->signal == SIGHUP);
  CHECK(parse_signal("SigUsr1")->signal == SIGUSR1);
  CHECK(parse_signal("USR2")->name == "SIGUSR2");
  CHECK(parse_signal("TERM")->signal == SIGTERM);
  for (const char* bad :
       {"", "SIG", "1", "KILL", "SIGKILL", "HUP ", "HANGUP"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_signal(bad).has_value());
  }
}

TEST_CASE("parse_listen_address: host:port, loopback by default") {
  auto a = parse_listen_address("127.0.0.1:4000");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 4000);
  CHECK(parse_listen_address(":4000")->host == "127.0.0.1");
  CHECK(parse_listen_address("4000")->port == 4000);
  CHECK(parse_listen_address("4000")->host == "127.0.0.1");
  CHECK(parse_listen_address("localhost:0")->port == 0);
  CHECK(parse_listen_address("0.0.0.0:65535")->port == 65535);
  auto v6 = parse_listen_address("[::1]:11311");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 11311);
  for (const char* bad :
       {"host:65536", "host:", "", ":", "::1:4000", "host:-1", "a b:1",
        "host:99999", "host:0x10", "[::1]", "[]:80", "host:000080"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_listen_address(bad).has_value());
  }
}

TEST_CASE("parse_memcached_address: host:port with a port from 1, IPv6 in "
          "brackets") {
  CHECK(parse_memcached_address("127.0.0.1:11211") == "127.0.0.1:11211");
  CHECK(parse_memcached_address("localhost:11211") == "localhost:11211");
  CHECK(parse_memcached_address("10.0.0.5:1") == "10.0.0.5:1");
  CHECK(parse_memcached_address(":11211") == "127.0.0.1:11211");
  CHECK(parse_memcached_address("11211") == "127.0.0.1:11211");
  CHECK(parse_memcached_address("[::1]:11211") == "[::1]:11211");
  CHECK(parse_memcached_address("[127.0.0.1]:65535") == "127.0.0.1:65535");
  for (std::string_view bad :
       {std::string_view{"127.0.0.1:0"}, std::string_view{":0"},
        std::string_view{"0"}, std::string_view{"127.0.0.1"},
        std::string_view{"::1:11211"}, std::string_view{"[::1]"},
        std::string_view{"host:65536"}, std::string_view{""},
        std::string_view{"a b:1"}, std::string_view{"a\001b:1"},
        std::string_view{"a\177:1"}, std::string_view{"a\0b:1", 5}}) {
    CAPTURE(std::string{bad});
    CHECK_FALSE(parse_memcached_address(bad).has_value());
  }
}

TEST_CASE("module names are looked up in the module table") {
  REQUIRE(find_module("memcached_passwords") != nullptr);
  CHECK(find_module("memcached_passwords")->name == "memcached_passwords");
  REQUIRE(find_module("memcached_permissions") != nullptr);
  CHECK(find_module("memcached_permissions")->name == "memcached_permissions");
  CHECK(find_module("memcached") == nullptr);
  CHECK(module_names() == "memcached_passwords, memcached_permissions");
}

// -- whole configurations -----------------------------------------------------

TEST_CASE("node.yaml: defaults, and paths resolved against its folder") {
  auto cfg = ok(minimal);
  CHECK(cfg.config_file == "/etc/mcfg/node.yaml");
  CHECK(cfg.source == "/etc/mcfg/cluster.yaml");
  CHECK(cfg.retry_interval == caf::timespan{100ms});
  CHECK(cfg.retry_deadline == caf::timespan{10s});
  CHECK(cfg.supervisor_intensity == 3);
  CHECK(cfg.supervisor_period == caf::timespan{10s});
  CHECK(cfg.io_threads == 16);
  CHECK(cfg.control.socket == "/etc/mcfg/mcfgd.sock");
  CHECK_FALSE(cfg.control.group);
  CHECK_FALSE(cfg.control.listen);
  CHECK(cfg.control.token_file.empty());
  CHECK_FALSE(cfg.control.tls);
  CHECK(cfg.log_level == log::level::info);
  CHECK_FALSE(cfg.allow_empty_users);
  REQUIRE(cfg.files.size() == 1);
  auto& f = cfg.files[0];
  CHECK(f.module == find_module("memcached_passwords"));
  CHECK(f.path == "/etc/mcfg/auth");
  CHECK(f.mode == 0600);
  CHECK(std::holds_alternative<refresh_none>(f.refresh));
  CHECK_FALSE(f.verify);
}

TEST_CASE("node.yaml: refresh.verify with a signal, its timeout 5 s by "
          "default") {
  auto cfg = ok(with_file_fields(
    "    refresh: {signal: HUP, pidfile: run/mc.pid, expect: memcached,\n"
    "              verify: {memcached: \"127.0.0.1:11211\"}}\n"));
  auto& f = cfg.files[0];
  auto sig = std::get_if<refresh_signal>(&f.refresh);
  REQUIRE(sig != nullptr);
  CHECK(sig->signal == SIGHUP);
  CHECK(sig->pidfile == "/etc/mcfg/run/mc.pid");
  CHECK(sig->expect == "memcached");
  REQUIRE(f.verify);
  CHECK(f.verify->memcached == "127.0.0.1:11211");
  CHECK(f.verify->timeout == caf::timespan{5s});
}

TEST_CASE("node.yaml: refresh.verify with a command and a timeout, on its "
          "file only") {
  struct example {
    const char* memcached;
    const char* timeout;
    const char* address;
    caf::timespan expected;
  };
  for (auto& ex : {example{"\"[::1]:11211\"", "250ms", "[::1]:11211", 250ms},
                   example{"\":11211\"", "100ms", "127.0.0.1:11211", 100ms},
                   example{"localhost:1", "10m", "localhost:1", 10min}}) {
    CAPTURE(ex.memcached);
    auto cfg = ok("source: cluster.yaml\n"
                  "files:\n"
                  "  - module: memcached_permissions\n"
                  "    path: perms.json\n"
                  "    refresh: {command: [reload]}\n"
                  "  - module: memcached_passwords\n"
                  "    path: auth\n"
                  "    refresh:\n"
                  "      command: [systemctl, reload, memcached]\n"
                  "      verify: {memcached: "
                  + std::string{ex.memcached} + ", timeout: " + ex.timeout
                  + "}\n");
    REQUIRE(cfg.files.size() == 2);
    CHECK_FALSE(cfg.files[0].verify);
    auto& f = cfg.files[1];
    auto cmd = std::get_if<refresh_command>(&f.refresh);
    REQUIRE(cmd != nullptr);
    CHECK(cmd->argv
          == std::vector<std::string>{"systemctl", "reload", "memcached"});
    REQUIRE(f.verify);
    CHECK(f.verify->memcached == ex.address);
    CHECK(f.verify->timeout == ex.expected);
  }
}

TEST_CASE("node.yaml: everything set") {
  auto cfg = ok("source: /srv/truth/cluster.yaml\n"
                "retry: {interval: 250ms, deadline: 2m}\n"
                "supervisor: {intensity: 0, period: 500us}\n"
                "files:\n"
                "  - module: memcached_passwords\n"
                "    path: ../run/./memcached.auth\n"
                "    mode: 0640\n"
                "    refresh: {signal: SIGHUP, pidfile: run/memcached.pid,\n"
                "              expect: memcached}\n"
                "  - module: memcached_permissions\n"
                "    path: /var/lib/mcfg/permissions.json\n"
                "    mode: \"0644\"\n"
                "    refresh:\n"
                "      command: [systemctl, reload, \"memcached@a b\"]\n"
                "control:\n"
                "  socket: run/ctl.sock\n"
                "  group: root\n"
                "  listen: \"[::1]:11311\"\n"
                "  token_file: secret/token\n"
                "  tls: {cert: tls/cert.pem, key: /etc/tls/key.pem}\n"
                "log_level: debug\n"
                "allow_empty_users: true\n"
                "io_threads: 64\n");
  CHECK(cfg.source == "/srv/truth/cluster.yaml");
  CHECK(cfg.retry_interval == caf::timespan{250ms});
  CHECK(cfg.retry_deadline == caf::timespan{2min});
  CHECK(cfg.supervisor_intensity == 0);
  CHECK(cfg.supervisor_period == caf::timespan{500us});
  CHECK(cfg.io_threads == 64);
  REQUIRE(cfg.files.size() == 2);
  CHECK(cfg.files[0].path == "/etc/run/memcached.auth");
  CHECK(cfg.files[0].mode == 0640);
  auto sig = std::get_if<refresh_signal>(&cfg.files[0].refresh);
  REQUIRE(sig != nullptr);
  CHECK(sig->signal == SIGHUP);
  CHECK(sig->name == "SIGHUP");
  CHECK(sig->pidfile == "/etc/mcfg/run/memcached.pid");
  CHECK(sig->expect == "memcached");
  CHECK(cfg.files[1].module == find_module("memcached_permissions"));
  CHECK(cfg.files[1].path == "/var/lib/mcfg/permissions.json");
  CHECK(cfg.files[1].mode == 0644);
  auto cmd = std::get_if<refresh_command>(&cfg.files[1].refresh);
  REQUIRE(cmd != nullptr);
  CHECK(cmd->argv
        == std::vector<std::string>{"systemctl", "reload", "memcached@a b"});
  CHECK(cfg.control.socket == "/etc/mcfg/run/ctl.sock");
  CHECK(cfg.control.group == gid_t{0});
  REQUIRE(cfg.control.listen);
  CHECK(cfg.control.listen->host == "::1");
  CHECK(cfg.control.listen->port == 11311);
  CHECK(cfg.control.token_file == "/etc/mcfg/secret/token");
  REQUIRE(cfg.control.tls);
  CHECK(cfg.control.tls->cert == "/etc/mcfg/tls/cert.pem");
  CHECK(cfg.control.tls->key == "/etc/tls/key.pem");
  CHECK(cfg.log_level == log::level::debug);
  CHECK(cfg.allow_empty_users);
}

TEST_CASE("node.yaml: a default control socket too long for a Unix socket "
          "address is an error too") {
  auto dir = "/" + std::string(100, 'd');
  auto r = parse_node_config(minimal, dir + "/node.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "control.socket");
  CHECK(contains(r.errors[0].message, dir + "/mcfgd.sock is longer than 107"));
  CHECK(parse_node_config(minimal + "control: {socket: /run/m.sock}\n",
                          dir + "/node.yaml")
          .ok());
}

TEST_CASE("node.yaml: the documented example of a bad mode") {
  auto e = only_error("source: cluster.yaml\n"
                      "files:\n"
                      "  - module: memcached_passwords\n"
                      "    path: auth\n"
                      "  - module: memcached_permissions\n"
                      "    path: perms.json\n"
                      "    mode:   rw\n");
  CHECK(e.to_string()
        == "node.yaml:7:13: files[1].mode: expected an octal mode like 0600, "
           "got \"rw\"");
}

TEST_CASE("node.yaml: bad values, each with line, column and key") {
  struct example {
    std::string text;
    int line;
    int column;
    const char* key;
    const char* message_part;
  };
  const example examples[] = {
    // unknown module
    {"source: c.yaml\nfiles:\n  - module: memcached_pw\n    path: a\n", 3, 13,
     "files[0].module", "unknown module \"memcached_pw\" (known: "},
    // durations
    {minimal + "retry:\n  interval: ten s\n", 6, 13, "retry.interval",
     "expected a duration like 100ms, 10s or 2m"},
    {minimal + "retry:\n  deadline: 10\n", 6, 13, "retry.deadline",
     "got \"10\""},
    {minimal + "retry:\n  deadline: -1s\n", 6, 13, "retry.deadline",
     "expected a duration"},
    {minimal + "retry:\n  interval: 0ms\n", 6, 13, "retry.interval",
     "longer than 0"},
    {minimal + "retry:\n  interval: 99999999999999999999s\n", 6, 13,
     "retry.interval", "expected a duration"},
    {minimal + "supervisor: {period: 1.5s}\n", 5, 22, "supervisor.period",
     "expected a duration"},
    {minimal + "supervisor: {intensity: three}\n", 5, 25,
     "supervisor.intensity", "got \"three\""},
    {minimal + "supervisor: {intensity: -1}\n", 5, 25, "supervisor.intensity",
     "expected a number of restarts"},
    {minimal + "io_threads: 0\n", 5, 13, "io_threads",
     "expected a number of threads from 1 to 1024, got \"0\""},
    {minimal + "io_threads: 1025\n", 5, 13, "io_threads", "got \"1025\""},
    {minimal + "io_threads: [4]\n", 5, 13, "io_threads",
     "expected a number of threads"},
    {minimal + "retry: 100ms\n", 5, 8, "retry",
     "expected a mapping with "
     "interval, deadline"},
    // modes
    {with_file_fields("    mode: 600\n"), 5, 11, "files[0].mode",
     "expected an octal mode like 0600, got \"600\""},
    {with_file_fields("    mode: 01777\n"), 5, 11, "files[0].mode",
     "expected an octal mode"},
    {with_file_fields("    mode: [6, 0, 0]\n"), 5, 11, "files[0].mode",
     "got a list"},
    {with_file_fields("    mode: 0666\n"), 5, 11, "files[0].mode",
     "lets group or others write"},
    {with_file_fields("    mode: 0620\n"), 5, 11, "files[0].mode",
     "mode 0620 lets group or others write"},
    {with_file_fields("    mode: 0644\n"), 5, 11, "files[0].mode",
     "lets anyone read the passwords"},
    // unknown keys, at every level
    {minimal + "colour: red\n", 5, 1, "colour",
     "unknown key (known: source, name, retry, supervisor, files, "
     "control, log_level, allow_empty_users, io_threads)"},
    {minimal + "retry: {intreval: 1s}\n", 5, 9, "retry.intreval",
     "unknown key (known: interval, deadline)"},
    {with_file_fields("    pathh: x\n"), 5, 5, "files[0].pathh", "unknown key"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, delay: 1s}\n"), 5,
     40, "files[0].refresh.delay", "unknown key"},
    {minimal + "control: {listen: \":1\", token_file: t, port: 2}\n", 5, 40,
     "control.port", "unknown key"},
    {minimal + "source: other.yaml\n", 5, 1, "source", "duplicate key"},
    // refresh
    {with_file_fields("    refresh: {signal: KILL, pidfile: p}\n"), 5, 23,
     "files[0].refresh.signal", "expected a signal name"},
    {with_file_fields("    refresh: {signal: HUP}\n"), 5, 15,
     "files[0].refresh.pidfile", "missing"},
    {with_file_fields("    refresh: {pidfile: p}\n"), 5, 14,
     "files[0].refresh.signal", "missing"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, command: [x]}\n"),
     5, 40, "files[0].refresh", "not both"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, expect: "
                      "/usr/bin/memcached}\n"),
     5, 48, "files[0].refresh.expect",
     "expected a program name like "
     "memcached (no '/'), got \"/usr/bin/memcached\""},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, expect: []}\n"),
     5, 48, "files[0].refresh.expect", "expected a program name"},
    {with_file_fields("    refresh: {command: [x], expect: memcached}\n"), 5,
     29, "files[0].refresh.expect", "a command has none"},
    {with_file_fields("    refresh: {command: []}\n"), 5, 24,
     "files[0].refresh.command", "an empty list"},
    {with_file_fields("    refresh: {command: reload}\n"), 5, 24,
     "files[0].refresh.command", "got a scalar"},
    {with_file_fields("    refresh: {command: [\"\", x]}\n"), 5, 25,
     "files[0].refresh.command[0]", "expected a program name"},
    {with_file_fields("    refresh: {command: [kill, [x]]}\n"), 5, 31,
     "files[0].refresh.command[1]", "expected a string"},
    {with_file_fields("    refresh: {}\n"), 5, 14, "files[0].refresh",
     "expected `signal` and `pidfile`, or `command`"},
    // refresh.verify
    {"source: c.yaml\nfiles:\n  - module: memcached_permissions\n"
     "    path: p.json\n"
     "    refresh: {command: [x], verify: {memcached: \":1\"}}\n",
     5, 29, "files[0].refresh.verify",
     "`verify: memcached` checks the auth file memcached reads "
     "(memcached_passwords); module memcached_permissions is not it"},
    {"source: c.yaml\nfiles:\n"
     "  - refresh: {command: [x], verify: {memcached: \":1\"}}\n"
     "    module: memcached_permissions\n    path: p.json\n",
     3, 29, "files[0].refresh.verify",
     "module memcached_permissions is not it"},
    {with_file_fields("    refresh: {verify: {memcached: \":1\"}}\n"), 5, 15,
     "files[0].refresh.verify",
     "checks that memcached took a refresh, and there is none: give "
     "`signal` and `pidfile`, or `command`"},
    {with_file_fields("    verify: {memcached: \":1\"}\n"), 5, 5,
     "files[0].verify", "unknown key"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":1\", tls: true}}\n"),
     5, 66, "files[0].refresh.verify.tls",
     "unknown key (known: memcached, timeout)"},
    {with_file_fields(
       "    refresh: {signal: HUP, pidfile: p, verify: {timeout: 1s}}\n"),
     5, 48, "files[0].refresh.verify.memcached",
     "missing: where memcached listens, e.g. \"127.0.0.1:11211\""},
    {with_file_fields(
       "    refresh: {signal: HUP, pidfile: p, verify: \"127.0.0.1:1\"}\n"),
     5, 48, "files[0].refresh.verify",
     "expected a mapping with memcached, timeout, got a scalar"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \"127.0.0.1\"}}\n"),
     5, 60, "files[0].refresh.verify.memcached",
     "expected \"host:port\" where memcached listens, with a port from 1 to "
     "65535 (e.g. \"127.0.0.1:11211\"), got \"127.0.0.1\""},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":0\"}}\n"),
     5, 60, "files[0].refresh.verify.memcached", "got \":0\""},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \"::1:11211\"}}\n"),
     5, 60, "files[0].refresh.verify.memcached", "got \"::1:11211\""},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: [a]}}\n"),
     5, 60, "files[0].refresh.verify.memcached", "got a list"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":1\", timeout: 5}}\n"),
     5, 75, "files[0].refresh.verify.timeout",
     "expected a duration like 100ms"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":1\", timeout: 0s}}\n"),
     5, 75, "files[0].refresh.verify.timeout", "must be longer than 0"},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":1\", timeout: 99ms}}\n"),
     5, 75, "files[0].refresh.verify.timeout",
     "expected from 100ms to 10m (memcached re-reads its file on a "
     "once-a-second tick), got \"99ms\""},
    {with_file_fields("    refresh: {signal: HUP, pidfile: p, verify: "
                      "{memcached: \":1\", timeout: 601s}}\n"),
     5, 75, "files[0].refresh.verify.timeout", "got \"601s\""},
    // control and log level
    {minimal + "control:\n  listen: \"localhost:70000\"\n", 6, 11,
     "control.listen", "port from 0 to 65535, got \"localhost:70000\""},
    {minimal + "control:\n  listen: \"127.0.0.1:1\"\n", 6, 3, "control.listen",
     "requires control.token_file"},
    {minimal + "control:\n  listen: \"0.0.0.0:1\"\n  token_file: t\n", 6, 3,
     "control.listen",
     "0.0.0.0 is not a loopback address: control.tls is required"},
    {minimal + "control:\n  listen: \"[::]:1\"\n  token_file: t\n", 6, 3,
     "control.listen", ":: is not a loopback address"},
    {minimal + "control:\n  token_file: t\n", 6, 3, "control.token_file",
     "is only used with control.listen"},
    {minimal + "control:\n  tls: {cert: c, key: k}\n", 6, 3, "control.tls",
     "is only used with control.listen"},
    {minimal
       + "control:\n  listen: \"0.0.0.0:1\"\n  token_file: t\n"
         "  tls: {cert: c}\n",
     8, 8, "control.tls", "needs both cert and key"},
    {minimal + "control: {group: no-such-group-x}\n", 5, 18, "control.group",
     "no such group \"no-such-group-x\""},
    {minimal + "control: {socket: auth}\n", 5, 19, "control.socket",
     "collides with the maintained file "},
    {minimal + "control: {socket: cluster.yaml}\n", 5, 19, "control.socket",
     "is the source or this node.yaml"},
    {minimal + "control: {socket: /" + std::string(120, 'a') + "}\n", 5, 19,
     "control.socket", "longer than 107 bytes"},
    {minimal + "log_level: verbose\n", 5, 12, "log_level",
     "expected one of error, warning, info, debug, got \"verbose\""},
    {minimal + "allow_empty_users: yes\n", 5, 20, "allow_empty_users",
     "expected true or false, got \"yes\""},
    // required pieces
    {"files:\n  - {module: memcached_passwords, path: a}\n", 1, 1, "source",
     "missing"},
    {"source: c.yaml\n", 1, 1, "files", "missing"},
    {"source: c.yaml\nfiles: []\n", 2, 8, "files", "at least one file"},
    {"source: c.yaml\nfiles: {a: b}\n", 2, 8, "files",
     "expected a list of files"},
    {"source: c.yaml\nfiles:\n  - {path: a}\n", 3, 5, "files[0].module",
     "missing"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords}\n", 3, 5,
     "files[0].path", "missing"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords, path: }\n", 3,
     35, "files[0].path", "expected a file path, got nothing"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords, path: run/}\n",
     3, 41, "files[0].path", "got a directory"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords, path: "
     "run/..}\n",
     3, 41, "files[0].path", "got a directory"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords, path: .}\n", 3,
     41, "files[0].path", "got a directory"},
    {"source: c.yaml\nfiles:\n  - {module: memcached_passwords, path: "
     "node.yaml}\n",
     3, 41, "files[0].path", "is this node.yaml itself"},
    {"source: [a]\nfiles:\n  - {module: memcached_passwords, path: a}\n", 1, 9,
     "source", "expected a file path, got a list"},
    {"- source\n", 1, 1, "", "expected a mapping with source"},
    {"", 0, 0, "", "empty"},
  };
  for (auto& ex : examples) {
    CAPTURE(ex.text);
    auto r = parse_node_config(ex.text, "node.yaml");
    INFO(to_string(r.errors));
    REQUIRE_FALSE(r.ok());
    CHECK_FALSE(r.value.has_value());
    REQUIRE(r.errors.size() == 1);
    auto& e = r.errors.front();
    CHECK(e.file == "node.yaml");
    CHECK(e.line == ex.line);
    CHECK(e.column == ex.column);
    CHECK(e.key == std::string{ex.key});
    CHECK(contains(e.message, ex.message_part));
  }
}

TEST_CASE("node.yaml: a world-readable mode is fine for permissions") {
  auto cfg = ok(
    "source: c.yaml\n"
    "files:\n"
    "  - {module: memcached_permissions, path: p.json, mode: 0644}\n");
  CHECK(cfg.files[0].mode == 0644);
}

TEST_CASE("node.yaml: YAML syntax errors give line and column") {
  auto e = only_error("source: c.yaml\n"
                      "files:\n"
                      "  - {module: memcached_passwords, path: a\n"
                      "control: {}\n");
  CHECK(e.line > 0);
  CHECK(e.column > 0);
  CHECK(e.key.empty());
  CHECK(contains(e.message, "invalid YAML"));
  auto tab = only_error("source: c.yaml\n\tfiles: []\n");
  CHECK(tab.line == 2);
  CHECK(tab.column == 1);
}

TEST_CASE("node.yaml: two files on one path are refused") {
  auto e = only_error(
    "source: c.yaml\n"
    "files:\n"
    "  - {module: memcached_passwords, path: run/auth}\n"
    "  - {module: memcached_permissions, path: ./run/../run/auth}\n");
  CHECK(e.line == 4);
  CHECK(e.column == 43);
  CHECK(e.key == "files[1].path");
  CHECK(contains(e.message, "same file as files[0] ("));
  SUBCASE("absolute and relative spellings of one path") {
    auto r = parse(
      "source: c.yaml\n"
      "files:\n"
      "  - {module: memcached_passwords, path: auth}\n"
      "  - {module: memcached_permissions, path: /etc/mcfg/auth}\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message == "same file as files[0] (/etc/mcfg/auth)");
  }
  SUBCASE("a path on another's temporary file") {
    auto r = parse("source: c.yaml\n"
                   "files:\n"
                   "  - {module: memcached_passwords, path: auth}\n"
                   "  - {module: memcached_permissions, path: auth.tmp}\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "files[1].path");
    CHECK(contains(r.errors[0].message, "temporary file of files[0]"));
  }
  SUBCASE("a path named like the folder's lock file, in any folder") {
    auto r = parse(
      "source: c.yaml\n"
      "files:\n"
      "  - {module: memcached_passwords, path: run/auth}\n"
      "  - {module: memcached_permissions, path: run/mcfgd.lock}\n"
      "  - {module: memcached_permissions, path: elsewhere/mcfgd.lock}\n"
      "  - {module: memcached_permissions, path: run/auth.lock}\n");
    REQUIRE(r.errors.size() == 2); // auth.lock is just a file now
    CHECK(r.errors[0].key == "files[1].path");
    CHECK(r.errors[1].key == "files[2].path");
    CHECK(contains(r.errors[0].message,
                   "is named mcfgd.lock, the lock file mcfgd keeps in each "
                   "folder it writes to"));
  }
  SUBCASE("the control socket on a folder's lock file") {
    auto r = parse("source: c.yaml\n"
                   "control: {socket: run/mcfgd.lock}\n"
                   "files:\n"
                   "  - {module: memcached_passwords, path: run/auth}\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "control.socket");
    CHECK(contains(r.errors[0].message, "is the lock file of the folder of "));
    CHECK(ok("source: c.yaml\n" // no file of this node in that folder
             "control: {socket: sock/mcfgd.lock}\n"
             "files:\n"
             "  - {module: memcached_passwords, path: run/auth}\n")
            .files.size()
          == 1);
  }
  SUBCASE("among 2,000 files, only the last collides: with the first") {
    std::string yaml = "source: c.yaml\nfiles:\n";
    for (int i = 0; i < 1999; ++i)
      yaml += "  - {module: memcached_passwords, path: run/" + std::to_string(i)
              + "}\n";
    yaml += "  - {module: memcached_passwords, path: run/0.tmp}\n";
    auto r = parse(yaml);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "files[1999].path");
    CHECK(contains(r.errors[0].message, "temporary file of files[0]"));
  }
  SUBCASE("a file on the source of truth") {
    auto r = parse("source: c.yaml\n"
                   "files:\n"
                   "  - {module: memcached_permissions, path: ./c.yaml}\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "files[0].path");
    CHECK(contains(r.errors[0].message, "source of truth"));
  }
  SUBCASE("different paths are fine, as are two files of one module") {
    auto cfg = ok("source: c.yaml\n"
                  "files:\n"
                  "  - {module: memcached_passwords, path: a/auth}\n"
                  "  - {module: memcached_passwords, path: b/auth}\n");
    CHECK(cfg.files.size() == 2);
  }
}

TEST_CASE("node.yaml: every error is reported, in document order") {
  auto r = parse_node_config(
    "source: c.yaml\n"
    "retry: {interval: soon}\n"
    "files:\n"
    "  - {module: nope, path: a}\n"
    "  - {module: memcached_passwords, path: b, mode: rw}\n"
    "log_level: loud\n",
    "node.yaml");
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].key == "retry.interval");
  CHECK(r.errors[1].key == "files[0].module");
  CHECK(r.errors[2].key == "files[1].mode");
  CHECK(r.errors[3].key == "log_level");
  for (size_t i = 1; i < r.errors.size(); ++i)
    CHECK(r.errors[i - 1].line < r.errors[i].line);
}

TEST_CASE("node.yaml: files on disk") {
  test::temp_dir dir;
  SUBCASE("relative paths resolve against node.yaml's folder, not the cwd") {
    std::filesystem::create_directories(dir.path / "conf");
    auto path = dir / "conf/node.yaml";
    test::write_text(path, "source: ../truth/cluster.yaml\n"
                           "files:\n"
                           "  - module: memcached_passwords\n"
                           "    path: run/auth\n"
                           "    refresh: {signal: HUP, pidfile: run/mc.pid}\n");
    auto r = load_node_config(path);
    INFO(to_string(r.errors));
    REQUIRE(r.ok());
    auto base = dir.path.lexically_normal();
    CHECK(r.value->config_file == (base / "conf/node.yaml").string());
    CHECK(r.value->source == (base / "truth/cluster.yaml").string());
    CHECK(r.value->files[0].path == (base / "conf/run/auth").string());
    CHECK(std::get<refresh_signal>(r.value->files[0].refresh).pidfile
          == (base / "conf/run/mc.pid").string());
  }
  SUBCASE("a relative node.yaml is made absolute against the cwd") {
    auto r = parse_node_config(minimal, "sub/node.yaml");
    REQUIRE(r.ok());
    auto cwd = std::filesystem::current_path();
    CHECK(r.value->source
          == (cwd / "sub/cluster.yaml").lexically_normal().string());
    CHECK(std::filesystem::path{r.value->files[0].path}.is_absolute());
  }
  SUBCASE("a missing node.yaml names the path and the OS error") {
    auto path = dir / "missing.yaml";
    auto r = load_node_config(path);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file == path);
    CHECK(r.errors[0].line == 0);
    CHECK(r.errors[0].to_string()
          == path
               + ": cannot read the node configuration: No such file or "
                 "directory");
  }
  SUBCASE("a directory is not a node.yaml") {
    auto r = load_node_config(dir.path.string());
    REQUIRE(r.errors.size() == 1);
    CHECK(contains(r.errors[0].message, "Is a directory"));
  }
  SUBCASE("errors in a file name it, with line and column") {
    auto path = dir / "node.yaml";
    test::write_text(path, minimal + "log_level: loud\n");
    auto r = load_node_config(path);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string().rfind(path + ":5:12: log_level: ", 0) == 0);
  }
}

TEST_CASE("examples/node.yaml and examples/cluster.yaml are valid") {
  auto r = load_node_config(MCFG_EXAMPLES_DIR "/node.yaml");
  INFO(to_string(r.errors));
  REQUIRE(r.ok());
  auto& cfg = *r.value;
  auto examples = std::filesystem::path{MCFG_EXAMPLES_DIR}.lexically_normal();
  CHECK(cfg.source == (examples / "cluster.yaml").string());
  REQUIRE(cfg.files.size() == 2);
  CHECK(cfg.files[0].module == find_module("memcached_passwords"));
  CHECK(std::holds_alternative<refresh_signal>(cfg.files[0].refresh));
  // scripts/demo starts memcached on this port.
  REQUIRE(cfg.files[0].verify);
  CHECK(cfg.files[0].verify->memcached == "127.0.0.1:11499");
  CHECK(cfg.files[1].module == find_module("memcached_permissions"));
  CHECK_FALSE(cfg.files[1].verify);
  CHECK(cfg.control.socket == (examples / "mcfgd.sock").string());
  CHECK_FALSE(cfg.control.listen);
  auto src = load_source_file(cfg.source);
  INFO(to_string(src.errors));
  REQUIRE(src.ok());
  CHECK_FALSE(src.value->values.empty());
  CHECK_FALSE(validate_memcached_passwords(src.value->values).has_value());
  CHECK_FALSE(validate_memcached_permissions(src.value->values).has_value());
}

TEST_CASE("the source's rules for the files: no users is refused unless "
          "node.yaml allows it, with the reason") {
  auto cfg = ok(minimal);
  auto empty = parse_source("users: {}\n", "cluster.yaml");
  REQUIRE(empty.ok());
  auto errors = validate_for_files(cfg, *empty.value);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].to_string()
        == "cluster.yaml:1:1: users: no users: memcached would let nobody in "
           "(1.6.18) or reject the empty auth file (1.6.32 and later); set "
           "`allow_empty_users: true` in node.yaml if that is meant");
  cfg.allow_empty_users = true;
  CHECK(validate_for_files(cfg, *empty.value).empty());
  // One user is enough either way.
  cfg.allow_empty_users = false;
  auto one = parse_source("users:\n  alice: {password: a}\n", "cluster.yaml");
  REQUIRE(one.ok());
  CHECK(validate_for_files(cfg, *one.value).empty());
}
