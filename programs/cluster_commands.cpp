#include "memcached_cfg/programs/cluster_commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "memcached_cfg/node/source_settings.hpp"
#include "memcached_cfg/programs/command_line.hpp"
#include "memcached_cfg/source/etcd_source.hpp"
#include "memcached_cfg/source/etcd_store.hpp"
#include "memcached_cfg/source/file_store.hpp"

namespace mcfg {

namespace {

using json = nlohmann::json;

std::string users_key_prefix(const cluster_target& t) {
  return t.prefix + std::string{users_prefix};
}

/// The checks a node's store runs: node.yaml's modules, else all of them.
std::vector<located_error> validate(const cluster_target& t,
                                    const source_document& doc) {
  if (t.node)
    return validate_for_files(*t.node, doc);
  std::vector<const module_entry*> all;
  for (auto& m : module_table())
    all.push_back(&m);
  return validate_for_modules(all, doc);
}

/// A user's value as etcd holds it: {"password": ..., "roles": [...]}.
/// Bytes that are not UTF-8 are replaced (or dropped), never thrown on.
std::string
user_json(const config_value& value,
          json::error_handler_t on_bad = json::error_handler_t::replace) {
  json out{{"password", ""}, {"roles", json::array()}};
  if (auto dict = caf::get_if<config_value::dictionary>(&value)) {
    if (auto i = dict->find("password"); i != dict->end())
      if (auto pw = caf::get_if<std::string>(&i->second))
        out["password"] = *pw;
    if (auto i = dict->find("roles"); i != dict->end())
      if (auto roles = caf::get_if<config_value::list>(&i->second))
        for (auto& r : *roles)
          if (auto s = caf::get_if<std::string>(&r))
            out["roles"].push_back(*s);
  }
  return out.dump(-1, ' ', false, on_bad);
}

/// Each of `wanted`'s users as the full key and the value etcd is to hold;
/// an error naming the first user whose password or roles are not valid
/// UTF-8 (a JSON value cannot hold them, and writing them replaced would
/// change a password without saying so).
result<std::map<std::string, std::string>>
user_texts(const cluster_target& t,
           const std::map<std::string, config_value>& wanted) {
  std::map<std::string, std::string> out;
  for (auto& [key, value] : wanted) {
    auto text = user_json(value);
    if (text != user_json(value, json::error_handler_t::ignore))
      return mcfg::fail(key
                        + ": its password or a role is not valid UTF-8, "
                          "which an etcd value cannot hold");
    out.emplace(t.prefix + key, std::move(text));
  }
  return out;
}

/// The puts and deletes that make `current` hold `texts` (key -> value).
std::vector<etcd::txn_op>
import_ops(const std::map<std::string, std::string>& texts,
           const etcd::range_result& current) {
  std::map<std::string, const std::string*> read;
  for (auto& kv : current.kvs)
    read.emplace(kv.key, &kv.value);
  std::vector<etcd::txn_op> ops;
  for (auto& [key, text] : texts) {
    auto i = read.find(key);
    if (i == read.end() || *i->second != text)
      ops.push_back(etcd::put_op(key, text));
  }
  for (auto& kv : current.kvs)
    if (texts.count(kv.key) == 0)
      ops.push_back(etcd::delete_op(kv.key));
  return ops;
}

/// Compares that hold only while `<prefix>users/` is as `current` read it:
/// each key read still at the mod_revision it was read at (a key deleted
/// since compares as 0), and no key under the prefix modified or created
/// after the read's revision. The first alone misses a new key, the second
/// alone a deleted one: a user deleted meanwhile that the file keeps
/// unchanged would be lost while import reported success.
std::vector<etcd::txn_compare>
unchanged_since_read(const cluster_target& t,
                     const etcd::range_result& current) {
  std::vector<etcd::txn_compare> out;
  etcd::txn_compare none_newer;
  none_newer.result = etcd::txn_compare::less;
  none_newer.key = users_key_prefix(t);
  none_newer.range_end = etcd::prefix_end(none_newer.key);
  none_newer.mod_revision = current.revision + 1;
  out.push_back(std::move(none_newer));
  for (auto& kv : current.kvs) {
    etcd::txn_compare same;
    same.result = etcd::txn_compare::equal;
    same.key = kv.key;
    same.mod_revision = kv.mod_revision;
    out.push_back(std::move(same));
  }
  return out;
}

/// What a registered node says about itself.
struct node_entry {
  std::string name;
  int64_t revision = 0;
  std::string digest;
  bool healthy = false;
  /// Its files hold `revision`, their refresh went through, and every
  /// consumer check is through (confirmed, or not verifiable).
  bool synced = false;
  /// The revision every checked file's consumer was shown to enforce; none
  /// for a node without a consumer check.
  std::optional<int64_t> confirmed_revision;
};

std::map<std::string, node_entry> registered_nodes(etcd::client& c,
                                                   const cluster_target& t) {
  std::map<std::string, node_entry> out;
  auto nodes = t.prefix + "nodes/";
  for (auto& kv : c.range_prefix(nodes).kvs) {
    node_entry n;
    n.name = kv.key.substr(nodes.size());
    auto j = json::parse(kv.value, nullptr, false);
    if (j.is_object()) {
      n.revision = j.value("revision", int64_t{0});
      n.digest = j.value("digest", "");
      n.healthy = j.value("healthy", false);
      n.synced = j.value("synced", false);
      if (auto c = j.find("confirmed_revision");
          c != j.end() && c->is_number_integer())
        n.confirmed_revision = c->get<int64_t>();
    }
    out.emplace(n.name, std::move(n));
  }
  return out;
}

/// "confirmed 12", or "no consumer check".
std::string confirmed_text(const node_entry& n) {
  if (!n.confirmed_revision)
    return "no consumer check";
  return "confirmed " + std::to_string(*n.confirmed_revision);
}

/// Whether `n` holds the users of `revision` (whose digest is `digest`).
bool holds(const node_entry& n, int64_t revision, const std::string& digest) {
  return n.revision >= revision || (!digest.empty() && n.digest == digest);
}

int fail(std::ostream& err, const std::string& message) {
  err << "mcfgctl: " << message << '\n';
  return cli::exit_failed;
}

} // namespace

int cluster_import(const cluster_target& t, const std::string& path,
                   std::ostream& out, std::ostream& err,
                   const std::function<void()>& before_commit) {
  auto loaded = load_and_validate(path, [&](const source_document& doc) {
    return validate(t, doc);
  });
  if (!loaded.ok()) {
    for (auto& e : loaded.errors)
      err << "mcfgctl: " << e.to_string() << '\n';
    return fail(err, "nothing imported");
  }
  auto texts = user_texts(t, loaded.value->values);
  if (!texts)
    return fail(err, texts.error().message + "; nothing imported");
  try {
    etcd::client c{t.client};
    auto current = c.range_prefix(users_key_prefix(t));
    auto ops = import_ops(*texts, current);
    if (ops.empty()) {
      out << current.revision << '\n';
      return cli::exit_ok;
    }
    if (before_commit)
      before_commit();
    auto r = c.txn(unchanged_since_read(t, current), ops);
    if (!r.succeeded)
      // Not tried again: another writer's change would be overwritten by a
      // file that was made without seeing it.
      return fail(err, "the users under " + users_key_prefix(t)
                         + " changed since they were read at revision "
                         + std::to_string(current.revision)
                         + "; nothing imported, try again");
    out << r.revision << '\n';
    return cli::exit_ok;
  } catch (const etcd::etcd_error& e) {
    return fail(err, std::string{e.what()} + "; nothing imported");
  }
}

int cluster_export(const cluster_target& t, bool show_secrets,
                   std::ostream& out, std::ostream& err) {
  try {
    etcd::client c{t.client};
    auto v = etcd::read_users(c, t.prefix);
    auto doc = parse_source_users(v.users, "etcd revision "
                                             + std::to_string(v.revision));
    if (!doc.ok()) {
      for (auto& e : doc.errors)
        err << "mcfgctl: " << e.to_string() << '\n';
      return fail(err, "the source at revision " + std::to_string(v.revision)
                         + " is not valid");
    }
    YAML::Emitter yaml;
    yaml << YAML::Comment("etcd " + t.prefix + " at revision "
                          + std::to_string(v.revision))
         << YAML::Newline;
    yaml << YAML::BeginMap << YAML::Key << "users" << YAML::Value
         << YAML::BeginMap;
    for (auto& [key, value] : doc.value->values) {
      auto user = json::parse(user_json(value));
      yaml << YAML::Key << key.substr(users_prefix.size()) << YAML::Value
           << YAML::Flow << YAML::BeginMap << YAML::Key << "password"
           << YAML::Value << YAML::DoubleQuoted
           << (show_secrets ? user["password"].get<std::string>()
                            : std::string{"********"})
           << YAML::Key << "roles" << YAML::Value << YAML::BeginSeq;
      for (auto& role : user["roles"])
        yaml << role.get<std::string>();
      yaml << YAML::EndSeq << YAML::EndMap;
    }
    yaml << YAML::EndMap << YAML::EndMap;
    out << yaml.c_str() << '\n';
    return cli::exit_ok;
  } catch (const etcd::etcd_error& e) {
    return fail(err, e.what());
  }
}

int cluster_status(const cluster_target& t, std::ostream& out,
                   std::ostream& err) {
  try {
    etcd::client c{t.client};
    auto current = etcd::read_users(c, t.prefix);
    auto nodes = registered_nodes(c, t);
    out << "source etcd " << t.prefix << " at revision " << current.revision
        << ", " << nodes.size() << " nodes registered\n";
    for (auto& [name, n] : nodes) {
      out << "  " << name << "  applied " << n.revision << "  "
          << confirmed_text(n) << "  "
          << (holds(n, current.revision, current.digest) ? "up to date"
                                                         : "behind")
          << "  " << (n.healthy ? "healthy" : "UNHEALTHY")
          << (n.synced ? "" : "  (refresh or check pending)") << '\n';
    }
    return cli::exit_ok;
  } catch (const etcd::etcd_error& e) {
    return fail(err, e.what());
  }
}

/// "3 nodes hold revision 12: 2 confirmed in their consumer, 1 without a
/// consumer check".
void report_synced(std::ostream& out,
                   const std::map<std::string, node_entry>& nodes,
                   const std::set<std::string>& names, int64_t target) {
  size_t confirmed = 0;
  size_t unverifiable = 0;
  for (auto& name : names) {
    auto& n = nodes.at(name);
    if (!n.confirmed_revision)
      continue;
    // Its files hold the target's users (revision n.revision, or the same
    // digest): confirmed when its consumer was shown to enforce those.
    if (*n.confirmed_revision >= std::min(n.revision, target))
      ++confirmed;
    else
      ++unverifiable;
  }
  out << names.size() << " nodes hold revision " << target << ": " << confirmed
      << " confirmed in their consumer, " << unverifiable
      << " written but not verifiable (no credential changed), "
      << names.size() - confirmed - unverifiable
      << " without a consumer check\n";
}

int cluster_sync(const cluster_target& t, std::optional<int64_t> revision,
                 std::chrono::milliseconds timeout, std::ostream& out,
                 std::ostream& err,
                 const std::function<void(const awaited_nodes&)>& on_round) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  try {
    etcd::client c{t.client};
    int64_t target = 0;
    std::string digest;
    if (revision) {
      target = *revision;
      try {
        digest = etcd::read_users(c, t.prefix, target).digest;
      } catch (const etcd::etcd_error& e) {
        // Compacted: only nodes at that revision or later count.
        if (e.code() != etcd::etcd_errc::compacted)
          throw;
      }
    } else {
      auto now = etcd::read_users(c, t.prefix);
      target = now.revision;
      digest = now.digest;
    }
    // The nodes registered now must all arrive; one that goes away has not.
    auto expected = registered_nodes(c, t);
    std::set<std::string> names;
    for (auto& [name, n] : expected)
      names.insert(name);
    if (names.empty())
      return fail(err, "no node is registered under " + t.prefix + "nodes/");
    awaited_nodes missing;
    for (;;) {
      auto nodes = registered_nodes(c, t);
      missing.clear();
      for (auto& [name, n] : nodes)
        names.insert(name);
      for (auto& name : names) {
        auto i = nodes.find(name);
        if (i == nodes.end())
          missing[name] = "no longer registered";
        else if (!holds(i->second, target, digest))
          missing[name] = "holds revision "
                          + std::to_string(i->second.revision);
        else if (!i->second.synced)
          missing[name] = "refresh or consumer check not through";
      }
      if (missing.empty()) {
        report_synced(out, nodes, names, target);
        return cli::exit_ok;
      }
      if (on_round)
        on_round(missing);
      if (clock::now() >= deadline)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& [name, why] : missing)
      err << "mcfgctl: node " << name << " did not reach revision " << target
          << ": " << why << '\n';
    return fail(err, std::to_string(missing.size()) + " of "
                       + std::to_string(names.size())
                       + " nodes did not converge within "
                       + std::to_string(timeout.count()) + "ms");
  } catch (const etcd::etcd_error& e) {
    return fail(err, e.what());
  }
}

result<cluster_target> cluster_target_of(const cluster_flags& o) {
  cluster_target t;
  if (!o.config.empty()) {
    if (!o.endpoints.empty())
      return mcfg::fail("give --config or --endpoints, not both");
    auto loaded = load_node_config(o.config);
    if (!loaded.ok())
      return mcfg::fail(to_string(loaded.errors));
    if (!loaded.value->etcd)
      return mcfg::fail(o.config + ": its source is a file, not etcd");
    auto client = etcd_client_options(*loaded.value->etcd);
    if (!client)
      return client.error();
    t.client = std::move(client).value();
    t.prefix = loaded.value->etcd->prefix;
    t.node = std::move(*loaded.value);
    return t;
  }
  if (o.endpoints.empty())
    return mcfg::fail("give --config node.yaml or --endpoints URL[,URL]");
  etcd_source_config cfg;
  cfg.endpoints = o.endpoints;
  if (!o.prefix.empty())
    cfg.prefix = o.prefix;
  if (cfg.prefix.back() != '/')
    return mcfg::fail("--prefix must end with '/'");
  if (o.user.empty() != o.password_file.empty())
    return mcfg::fail("--user and --password-file go together");
  cfg.username = o.user;
  cfg.password_file = o.password_file;
  if (o.cert.empty() != o.key.empty())
    return mcfg::fail("--cert and --key go together");
  if (!o.cacert.empty() || !o.cert.empty())
    cfg.tls = etcd::tls_files{o.cacert, o.cert, o.key};
  auto client = etcd_client_options(cfg);
  if (!client)
    return client.error();
  t.client = std::move(client).value();
  t.prefix = cfg.prefix;
  return t;
}

} // namespace mcfg
