// node.yaml with an etcd cluster as the source (ARCHITECTURE.md §6): the
// `source: {etcd: ...}` form, `name`, their errors, and the password file.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;

namespace {

const std::string files = "files:\n"
                          "  - module: memcached_passwords\n"
                          "    path: auth\n";

node_config_result parse(const std::string& source) {
  return parse_node_config(source + files, "/etc/mcfg/node.yaml");
}

located_error only_error(const std::string& source) {
  auto r = parse(source);
  INFO(to_string(r.errors));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  return r.errors[0];
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("node.yaml etcd: every field, resolved") {
  auto r = parse("name: node-1.a\n"
                 "source:\n"
                 "  etcd:\n"
                 "    endpoints: [\"http://127.0.0.1:2379/\", "
                 "\"https://etcd2:2379\"]\n"
                 "    prefix: /mc/\n"
                 "    username: mcfgd\n"
                 "    password_file: etcd.pw\n"
                 "    tls: {ca: ca.pem, cert: /pki/node.pem, key: "
                 "node-key.pem}\n");
  INFO(to_string(r.errors));
  REQUIRE(r.ok());
  auto& cfg = *r.value;
  CHECK(cfg.source.empty());
  CHECK(cfg.name == "node-1.a");
  REQUIRE(cfg.etcd);
  CHECK(
    cfg.etcd->endpoints
    == std::vector<std::string>{"http://127.0.0.1:2379", "https://etcd2:2379"});
  CHECK(cfg.etcd->prefix == "/mc/");
  CHECK(cfg.etcd->username == "mcfgd");
  CHECK(cfg.etcd->password_file == "/etc/mcfg/etcd.pw");
  REQUIRE(cfg.etcd->tls);
  CHECK(cfg.etcd->tls->ca == "/etc/mcfg/ca.pem");
  CHECK(cfg.etcd->tls->cert == "/pki/node.pem");
  CHECK(cfg.etcd->tls->key == "/etc/mcfg/node-key.pem");
}

TEST_CASE("node.yaml etcd: defaults, and the file source keeps working") {
  auto r = parse("source: {etcd: {endpoints: [\"http://127.0.0.1:2379\"]}}\n");
  REQUIRE(r.ok());
  CHECK(r.value->etcd->prefix == "/memcached_cfg/");
  CHECK(r.value->etcd->username.empty());
  CHECK_FALSE(r.value->etcd->tls);
  char host[256] = {0};
  REQUIRE(::gethostname(host, sizeof(host) - 1) == 0);
  CHECK(r.value->name == host);

  auto file = parse("source: cluster.yaml\n");
  REQUIRE(file.ok());
  CHECK(file.value->source == "/etc/mcfg/cluster.yaml");
  CHECK_FALSE(file.value->etcd);
}

TEST_CASE("node.yaml etcd: bad input, located") {
  auto e = only_error("source: {etcd: {prefix: /mc/}}\n");
  CHECK(e.key == "source.etcd.endpoints");
  CHECK(contains(e.message, "missing"));

  e = only_error("source:\n  etcd:\n    endpoints: [\"127.0.0.1:2379\"]\n");
  CHECK(e.key == "source.etcd.endpoints[0]");
  CHECK(e.line == 3);
  CHECK(contains(e.message, "expected a URL"));

  e = only_error("source: {etcd: {endpoints: []}}\n");
  CHECK(e.key == "source.etcd.endpoints");

  e = only_error(
    "source: {etcd: {endpoints: [\"http://h:1\"], prefix: /mc}}\n");
  CHECK(e.key == "source.etcd.prefix");
  CHECK(contains(e.message, "must end with '/'"));

  e = only_error(
    "source: {etcd: {endpoints: [\"http://h:1\"], username: u}}\n");
  CHECK(e.key == "source.etcd.username");
  CHECK(contains(e.message, "requires source.etcd.password_file"));

  e = only_error("source: {etcd: {endpoints: [\"http://h:1\"], "
                 "password_file: pw}}\n");
  CHECK(e.key == "source.etcd.password_file");

  e = only_error("source: {etcd: {endpoints: [\"http://h:1\"], "
                 "tls: {cert: c.pem}}}\n");
  CHECK(e.key == "source.etcd.tls.key");

  e = only_error("source: {etcd: {endpoints: [\"http://h:1\"], token: x}}\n");
  CHECK(e.key == "source.etcd.token");
  CHECK(contains(e.message, "unknown key"));

  e = only_error("source: {consul: {}}\n");
  CHECK(e.key == "source.consul");

  e = only_error("name: \"a/b\"\nsource: cluster.yaml\n");
  CHECK(e.key == "name");
}

TEST_CASE("node.yaml etcd: the password file must be 0600, one line") {
  test::temp_dir dir;
  auto pw = dir / "etcd.pw";
  etcd_source_config cfg;
  cfg.endpoints = {"http://127.0.0.1:2379"};
  cfg.username = "mcfgd";
  cfg.password_file = pw;
  test::write_text(pw, "s3cret\n");
  ::chmod(pw.c_str(), 0600);
  auto good = etcd_client_options(cfg);
  REQUIRE(good.ok());
  CHECK(good->password == "s3cret");
  CHECK(good->username == "mcfgd");

  ::chmod(pw.c_str(), 0640);
  auto loose = etcd_client_options(cfg);
  REQUIRE_FALSE(loose.ok());
  CHECK(contains(loose.error().message, "make it mode 0600"));
  CHECK(contains(loose.error().message, pw));
  CHECK_FALSE(contains(loose.error().message, "s3cret"));

  test::write_text(pw, "two\nlines\n");
  ::chmod(pw.c_str(), 0600);
  auto two = etcd_client_options(cfg);
  REQUIRE_FALSE(two.ok());
  CHECK(contains(two.error().message, "one line"));
  CHECK_FALSE(contains(two.error().message, "lines\n"));

  cfg.password_file = dir / "none";
  auto missing = etcd_client_options(cfg);
  REQUIRE_FALSE(missing.ok());
  CHECK(contains(missing.error().message, "No such file"));
}

TEST_CASE("node.yaml etcd: stale_after, 10s by default, above 0, located") {
  auto r = parse("source: {etcd: {endpoints: [\"http://h:1\"]}}\n");
  REQUIRE(r.ok());
  CHECK(r.value->etcd->stale_after == std::chrono::seconds(10));
  r = parse("source: {etcd: {endpoints: [\"http://h:1\"], "
            "stale_after: 2s}}\n");
  REQUIRE(r.ok());
  CHECK(r.value->etcd->stale_after == std::chrono::seconds(2));
  for (auto bad : {"0s", "soon", "500us"}) {
    CAPTURE(bad);
    auto e = only_error("source:\n  etcd:\n    endpoints: [\"http://h:1\"]\n"
                        "    stale_after: "
                        + std::string{bad} + "\n");
    CHECK(e.key == "source.etcd.stale_after");
    CHECK(e.line == 4);
  }
}
