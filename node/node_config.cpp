#include "memcached_cfg/node/node_config.hpp"

#include <grp.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "memcached_cfg/node/node_yaml.hpp"

namespace fs = std::filesystem;

namespace mcfg {

// -- node.yaml ----------------------------------------------------------------

namespace {

class node_parser : node_yaml_reader {
public:
  node_parser(std::string display, const fs::path& config_file)
    : node_yaml_reader(std::move(display), config_file.parent_path()) {
    cfg_.config_file = config_file.string();
    char host[256] = {0};
    if (::gethostname(host, sizeof(host) - 1) == 0)
      cfg_.name = host;
    cfg_.control.socket = (base() / "mcfgd.sock").string();
  }

  node_config_result run(std::string_view text) {
    if (auto root = read_document(text, "the document is empty; expected a "
                                        "mapping with `source` and `files`"))
      top_level(*root);
    return finish(std::move(cfg_));
  }

private:
  void top_level(const YAML::Node& root) {
    bool have_source = false;
    bool have_files = false;
    YAML::Node none;
    auto ok = walk(none, root, "",
                   {"source", "name", "retry", "supervisor", "files", "control",
                    "log_level", "allow_empty_users", "io_threads"},
                   [&](const YAML::Node& k, const YAML::Node& v) {
                     const auto& name = k.Scalar();
                     if (name == "source") {
                       have_source = true;
                       if (v.IsMap()) {
                         etcd_source(k, v);
                       } else if (auto p = path_value(k, v, "source")) {
                         cfg_.source = *p;
                       }
                     } else if (name == "name") {
                       if (auto n = scalar(k, v, "name", "a node name"))
                         node_name(k, v, *n);
                     } else if (name == "retry") {
                       retry(k, v);
                     } else if (name == "supervisor") {
                       supervisor(k, v);
                     } else if (name == "files") {
                       have_files = true;
                       files(k, v);
                     } else if (name == "control") {
                       control(k, v);
                     } else if (name == "log_level") {
                       log_level(k, v);
                     } else if (name == "io_threads") {
                       io_threads(k, v);
                     } else if (name == "allow_empty_users") {
                       bool_value(k, v, "allow_empty_users",
                                  cfg_.allow_empty_users);
                     }
                   });
    if (!ok)
      return;
    if (!have_source)
      fail_at(root, "source",
              "missing: the path of the source-of-truth YAML is required");
    if (!have_files)
      fail_at(root, "files", "missing: at least one file is required");
    check_collisions();
    cfg_.files.shrink_to_fit(); // kept for the node's life
  }

  void retry(const YAML::Node& key, const YAML::Node& node) {
    walk(key, node, "retry", {"interval", "deadline"},
         [&](const YAML::Node& k, const YAML::Node& v) {
           auto path = "retry." + k.Scalar();
           auto d = duration(k, v, path);
           if (!d)
             return;
           if (k.Scalar() == "interval")
             cfg_.retry_interval = *d;
           else
             cfg_.retry_deadline = *d;
         });
  }

  void log_level(const YAML::Node& k, const YAML::Node& v) {
    if (auto lvl = v.IsScalar() ? log::parse_level(v.Scalar()) : std::nullopt)
      cfg_.log_level = *lvl;
    else
      fail_value(k, v, "log_level",
                 "expected one of error, warning, info, debug, got " + got(v));
  }

  void io_threads(const YAML::Node& k, const YAML::Node& v) {
    auto n = v.IsScalar() ? parse_uint(v.Scalar(), 1024) : std::nullopt;
    if (n && *n > 0)
      cfg_.io_threads = static_cast<size_t>(*n);
    else
      fail_value(k, v, "io_threads",
                 "expected a number of threads from 1 to 1024, got " + got(v));
  }

  void supervisor(const YAML::Node& key, const YAML::Node& node) {
    walk(key, node, "supervisor", {"intensity", "period"},
         [&](const YAML::Node& k, const YAML::Node& v) {
           auto path = "supervisor." + k.Scalar();
           if (k.Scalar() == "period") {
             if (auto d = duration(k, v, path))
               cfg_.supervisor_period = *d;
             return;
           }
           auto n = v.IsScalar() ? parse_uint(v.Scalar(), 1'000'000)
                                 : std::nullopt;
           if (n)
             cfg_.supervisor_intensity = static_cast<size_t>(*n);
           else
             fail_value(k, v, path,
                        "expected a number of restarts from 0 to 1000000, "
                        "got "
                          + got(v));
         });
  }

  void control(const YAML::Node& key, const YAML::Node& node) {
    auto& out = cfg_.control;
    YAML::Node listen_key;
    bool have_listen = false;
    std::optional<source_mark> token_mark;
    std::optional<source_mark> tls_mark;
    walk(key, node, "control",
         {"socket", "group", "listen", "token_file", "tls"},
         [&](const YAML::Node& k, const YAML::Node& v) {
           const auto& name = k.Scalar();
           auto path = "control." + name;
           if (name == "socket") {
             socket_value(k, v);
           } else if (name == "group") {
             if (auto str = scalar(k, v, path, "a group name or gid"))
               out.group = group_id(k, v, *str);
           } else if (name == "listen") {
             auto addr = v.IsScalar() ? parse_listen_address(v.Scalar())
                                      : std::nullopt;
             if (!addr)
               fail_value(k, v, path,
                          "expected \"host:port\" (or \":port\") with a "
                          "port from 0 to 65535, got "
                            + got(v));
             out.listen = std::move(addr);
             listen_key = k;
             have_listen = true;
           } else if (name == "token_file") {
             token_mark = mark_of(k);
             if (auto p = path_value(k, v, path))
               out.token_file = *p;
           } else {
             tls_mark = mark_of(k);
             tls(k, v);
           }
         });
    if (have_listen) {
      if (out.listen && !token_mark)
        fail_at(listen_key, "control.listen",
                "requires control.token_file (a 0600 file holding the "
                "bearer token every request must carry)");
      if (out.listen && !is_loopback_host(out.listen->host) && !tls_mark)
        fail_at(listen_key, "control.listen",
                out.listen->host
                  + " is not a loopback address: control.tls "
                    "is required (cert and key)");
    } else {
      if (token_mark)
        fail(*token_mark, "control.token_file",
             "is only used with control.listen");
      if (tls_mark)
        fail(*tls_mark, "control.tls", "is only used with control.listen");
    }
  }

  void socket_value(const YAML::Node& k, const YAML::Node& v) {
    auto p = path_value(k, v, "control.socket");
    if (!p)
      return;
    cfg_.control.socket = *p;
    socket_mark_ = mark_of(v);
  }

  /// A group by name, or by number.
  std::optional<gid_t> group_id(const YAML::Node& k, const YAML::Node& v,
                                const std::string& name) {
    if (auto n = parse_uint(name, std::numeric_limits<gid_t>::max() - 1))
      return static_cast<gid_t>(*n);
    std::vector<char> buf(16384);
    group g{};
    group* found = nullptr;
    if (::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) == 0
        && found)
      return found->gr_gid;
    fail_value(k, v, "control.group", "no such group " + got(v));
    return std::nullopt;
  }

  void tls(const YAML::Node& key, const YAML::Node& node) {
    server_tls_files out;
    auto is_map = walk(key, node, "control.tls", {"cert", "key"},
                       [&](const YAML::Node& k, const YAML::Node& v) {
                         auto path = "control.tls." + k.Scalar();
                         if (auto p = path_value(k, v, path))
                           (k.Scalar() == "cert" ? out.cert : out.key) = *p;
                       });
    if (!is_map)
      return;
    if (out.cert.empty() || out.key.empty()) {
      fail_at(node, "control.tls", "needs both cert and key (PEM files)");
      return;
    }
    cfg_.control.tls = std::move(out);
  }

  void files(const YAML::Node& key, const YAML::Node& node) {
    if (!node.IsSequence()) {
      fail_value(key, node, "files",
                 std::string{"expected a list of files, got "}
                   + describe_type(node));
      return;
    }
    if (node.size() == 0) {
      fail_value(key, node, "files", "expected at least one file");
      return;
    }
    size_t index = 0;
    for (const auto& entry : node)
      file(key, entry, index++);
  }

  void file(const YAML::Node& list_key, const YAML::Node& node, size_t index) {
    auto path = "files[" + std::to_string(index) + "]";
    file_config out;
    bool have_module = false;
    bool have_path = false;
    bool valid = true;
    auto errors_before = error_count();
    YAML::Node mode_node;
    bool have_mode = false;
    YAML::Node verify_key;
    source_mark path_mark;
    auto is_map = walk(
      list_key, node, path, {"module", "path", "mode", "refresh"},
      [&](const YAML::Node& k, const YAML::Node& v) {
        const auto& name = k.Scalar();
        auto key_path = path + "." + name;
        if (name == "module") {
          have_module = true;
          auto str = scalar(k, v, key_path, "a module name");
          if (!str)
            return;
          if (auto m = find_module(*str))
            out.module = m;
          else
            fail_value(k, v, key_path,
                       "unknown module " + got(v) + " (known: " + module_names()
                         + ")");
        } else if (name == "path") {
          have_path = true;
          if (auto p = path_value(k, v, key_path)) {
            out.path = *p;
            path_mark = mark_of(v);
          }
        } else if (name == "mode") {
          std::optional<mode_t> mode;
          if (v.IsScalar())
            mode = parse_mode(v.Scalar());
          if (mode) {
            out.mode = *mode;
            mode_node = v;
            have_mode = true;
          } else {
            fail_value(k, v, key_path,
                       "expected an octal mode like 0600, got " + got(v));
          }
        } else if (name == "refresh") {
          refresh(k, v, key_path, out, verify_key);
        }
      });
    if (!is_map)
      return;
    if (!have_module) {
      fail_at(node, path + ".module",
              "missing (one of " + module_names() + ")");
      valid = false;
    }
    if (!have_path) {
      fail_at(node, path + ".path", "missing: the file to maintain");
      valid = false;
    }
    if (have_mode && error_count() == errors_before)
      check_mode(out, mode_node, path + ".mode");
    if (out.verify && out.module && out.module->name != refresh_verify::module)
      fail_at(verify_key, path + ".refresh.verify",
              "`verify: memcached` checks the auth file memcached reads ("
                + std::string{refresh_verify::module} + "); module "
                + std::string{out.module->name} + " is not it");
    if (valid && error_count() == errors_before) {
      cfg_.files.push_back(std::move(out));
      path_marks_.push_back({path, path_mark});
    }
  }

  void check_mode(const file_config& f, const YAML::Node& at,
                  const std::string& key) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(f.mode));
    if ((f.mode & 0022) != 0)
      fail_at(at, key,
              std::string{"mode "} + buf
                + " lets group or others write the file; drop the write "
                  "bits (e.g. 0600 or 0640)");
    else if ((f.mode & f.module->forbidden_mode) != 0)
      fail_at(at, key,
              std::string{"mode "} + buf + " "
                + std::string{f.module->forbidden_mode_reason});
  }

  /// A `refresh:` mapping's keys as found, before the checks between them.
  struct refresh_fields {
    bool have_signal = false;
    YAML::Node signal_key;
    std::optional<refresh_signal> sig;
    bool have_pidfile = false;
    std::optional<std::string> pidfile;
    bool have_command = false;
    YAML::Node command_key;
    std::optional<refresh_command> command;
    YAML::Node expect_key;
    std::optional<std::string> expect;
    YAML::Node verify_key;
    std::optional<refresh_verify> verify;
  };

  /// Parses `refresh:` into `out.refresh` and `out.verify`, and leaves
  /// `verify_key` at the `verify` key for the checks that need the module.
  void refresh(const YAML::Node& key, const YAML::Node& node,
               const std::string& path, file_config& out,
               YAML::Node& verify_key) {
    refresh_fields f;
    auto errors_before = error_count();
    auto is_map = walk(key, node, path,
                       {"signal", "pidfile", "expect", "command", "verify"},
                       [&](const YAML::Node& k, const YAML::Node& v) {
                         refresh_field(k, v, path + "." + k.Scalar(), f);
                       });
    if (!is_map || error_count() != errors_before)
      return;
    auto spec = refresh_of(key, node, path, f);
    if (!spec)
      return;
    out.refresh = std::move(*spec);
    out.verify = std::move(f.verify);
    verify_key = f.verify_key;
  }

  void refresh_field(const YAML::Node& k, const YAML::Node& v,
                     const std::string& key_path, refresh_fields& f) {
    const auto& name = k.Scalar();
    if (name == "signal") {
      f.have_signal = true;
      f.signal_key = k;
      if (v.IsScalar())
        f.sig = parse_signal(v.Scalar());
      if (!f.sig)
        fail_value(k, v, key_path,
                   "expected a signal name (HUP, INT, QUIT, TERM, USR1, "
                   "USR2, with or without SIG), got "
                     + got(v));
    } else if (name == "pidfile") {
      f.have_pidfile = true;
      f.pidfile = path_value(k, v, key_path);
    } else if (name == "expect") {
      f.expect_key = k;
      // A program's name as /proc/PID/comm and its executable show it.
      if (v.IsScalar() && !v.Scalar().empty()
          && v.Scalar().find_first_of(std::string{"/\0", 2})
               == std::string::npos)
        f.expect = v.Scalar();
      else
        fail_value(k, v, key_path,
                   "expected a program name like memcached (no '/'), got "
                     + got(v));
    } else if (name == "command") {
      f.have_command = true;
      f.command_key = k;
      f.command = argv(k, v, key_path);
    } else if (name == "verify") {
      f.verify_key = k;
      f.verify = verify(k, v, key_path);
    }
  }

  /// `verify: {memcached: "HOST:PORT", timeout: 5s}`.
  std::optional<refresh_verify> verify(const YAML::Node& key,
                                       const YAML::Node& node,
                                       const std::string& path) {
    refresh_verify out;
    bool have_memcached = false;
    auto errors_before = error_count();
    auto is_map = walk(key, node, path, {"memcached", "timeout"},
                       [&](const YAML::Node& k, const YAML::Node& v) {
                         auto key_path = path + "." + k.Scalar();
                         if (k.Scalar() == "memcached") {
                           have_memcached = true;
                           if (auto a = memcached_address(k, v, key_path))
                             out.memcached = std::move(*a);
                         } else if (auto d = verify_timeout(k, v, key_path)) {
                           out.timeout = *d;
                         }
                       });
    if (!is_map || error_count() != errors_before)
      return std::nullopt;
    if (!have_memcached) {
      fail_value(key, node, path + ".memcached",
                 "missing: where memcached listens, e.g. \"127.0.0.1:11211\"");
      return std::nullopt;
    }
    return out;
  }

  std::optional<std::string> memcached_address(const YAML::Node& k,
                                               const YAML::Node& v,
                                               const std::string& path) {
    std::optional<std::string> addr;
    if (v.IsScalar())
      addr = parse_memcached_address(v.Scalar());
    if (!addr)
      fail_value(k, v, path,
                 "expected \"host:port\" where memcached listens, with a port "
                 "from 1 to 65535 (e.g. \"127.0.0.1:11211\"), got "
                   + got(v));
    return addr;
  }

  std::optional<caf::timespan> verify_timeout(const YAML::Node& k,
                                              const YAML::Node& v,
                                              const std::string& path) {
    auto d = duration(k, v, path);
    if (!d)
      return std::nullopt;
    if (*d < refresh_verify::min_timeout || *d > refresh_verify::max_timeout) {
      // Written as node.yaml would write them (format_duration says 600s).
      static_assert(refresh_verify::min_timeout
                      == std::chrono::milliseconds(100)
                    && refresh_verify::max_timeout == std::chrono::minutes(10));
      fail_value(k, v, path,
                 "expected from 100ms to 10m (memcached re-reads its file on "
                 "a once-a-second tick), got "
                   + got(v));
      return std::nullopt;
    }
    return d;
  }

  /// The refresh `f` describes, once each of its keys was valid: a signal
  /// and its pidfile, or a command.
  std::optional<refresh_spec> refresh_of(const YAML::Node& key,
                                         const YAML::Node& node,
                                         const std::string& path,
                                         refresh_fields& f) {
    if (f.have_command && (f.have_signal || f.have_pidfile)) {
      fail_at(f.command_key, path,
              "give either `signal` and `pidfile`, or `command`, not both");
      return std::nullopt;
    }
    if (f.have_command && f.expect) {
      fail_at(f.expect_key, path + ".expect",
              "`expect` checks the pid a signal is sent to; a command has "
              "none");
      return std::nullopt;
    }
    if (f.have_command)
      return refresh_spec{std::move(*f.command)};
    if (f.verify && !f.have_signal && !f.have_pidfile) {
      fail_at(f.verify_key, path + ".verify",
              "checks that memcached took a refresh, and there is none: give "
              "`signal` and `pidfile`, or `command`");
      return std::nullopt;
    }
    if (f.have_signal && !f.have_pidfile) {
      fail_at(f.signal_key, path + ".pidfile",
              "missing: a signal needs the pidfile of the process to send it "
              "to");
      return std::nullopt;
    }
    if (f.have_pidfile && !f.have_signal) {
      fail_value(key, node, path + ".signal",
                 "missing: which signal to send (e.g. HUP)");
      return std::nullopt;
    }
    if (!f.have_signal) {
      fail_value(key, node, path,
                 "expected `signal` and `pidfile`, or `command`");
      return std::nullopt;
    }
    f.sig->pidfile = std::move(*f.pidfile);
    f.sig->expect = f.expect.value_or("");
    return refresh_spec{std::move(*f.sig)};
  }

  std::optional<refresh_command>
  argv(const YAML::Node& key, const YAML::Node& node, const std::string& path) {
    if (!node.IsSequence() || node.size() == 0) {
      fail_value(key, node, path,
                 std::string{"expected a non-empty list of strings (the "
                             "command and its arguments), got "}
                   + (node.IsSequence() ? "an empty list"
                                        : describe_type(node)));
      return std::nullopt;
    }
    refresh_command out;
    size_t index = 0;
    bool ok = true;
    for (const auto& arg : node) {
      auto arg_path = path + "[" + std::to_string(index) + "]";
      if (!arg.IsScalar() || (index == 0 && arg.Scalar().empty())) {
        fail_at(arg, arg_path,
                std::string{"expected "}
                  + (index == 0 ? "a program name" : "a string") + ", got "
                  + (arg.IsScalar() ? "an empty string" : describe_type(arg)));
        ok = false;
      } else if (arg.Scalar().find('\0') != std::string::npos) {
        fail_at(arg, arg_path, "an argument cannot contain a NUL byte");
        ok = false;
      } else {
        out.argv.push_back(arg.Scalar());
      }
      ++index;
    }
    if (!ok)
      return std::nullopt;
    return out;
  }

  // -- source: {etcd: ...} --------------------------------------------------

  void etcd_source(const YAML::Node& key, const YAML::Node& node) {
    walk(key, node, "source", {"etcd"},
         [&](const YAML::Node& k, const YAML::Node& v) { etcd(k, v); });
  }

  void etcd(const YAML::Node& key, const YAML::Node& node) {
    etcd_source_config out;
    bool have_endpoints = false;
    std::optional<source_mark> user_mark;
    std::optional<source_mark> password_mark;
    auto errors_before = error_count();
    auto is_map = walk(
      key, node, "source.etcd",
      {"endpoints", "prefix", "username", "password_file", "tls",
       "stale_after"},
      [&](const YAML::Node& k, const YAML::Node& v) {
        const auto& name = k.Scalar();
        auto path = "source.etcd." + name;
        if (name == "endpoints") {
          have_endpoints = true;
          out.endpoints = etcd_endpoints(k, v);
        } else if (name == "prefix") {
          auto p = scalar(k, v, path, "a key prefix like /memcached_cfg/");
          if (p && p->back() != '/')
            fail_value(k, v, path,
                       "must end with '/' (else /mc would also take /mcx/): "
                       "got "
                         + got(v));
          else if (p)
            out.prefix = *p;
        } else if (name == "username") {
          user_mark = mark_of(k);
          if (auto u = scalar(k, v, path, "an etcd user name"))
            out.username = *u;
        } else if (name == "password_file") {
          password_mark = mark_of(k);
          if (auto p = path_value(k, v, path))
            out.password_file = *p;
        } else if (name == "stale_after") {
          stale_after(k, v, out);
        } else {
          etcd_tls(k, v, out);
        }
      });
    if (!is_map)
      return;
    if (!have_endpoints)
      fail_at(node, "source.etcd.endpoints",
              "missing: at least one client URL, e.g. http://127.0.0.1:2379");
    if (user_mark && !password_mark)
      fail(*user_mark, "source.etcd.username",
           "requires source.etcd.password_file (a 0600 file holding the "
           "password)");
    if (password_mark && !user_mark)
      fail(*password_mark, "source.etcd.password_file",
           "is only used with source.etcd.username");
    if (error_count() == errors_before)
      cfg_.etcd = std::move(out);
  }

  std::vector<std::string> etcd_endpoints(const YAML::Node& key,
                                          const YAML::Node& node) {
    std::vector<std::string> out;
    if (!node.IsSequence() || node.size() == 0) {
      fail_value(key, node, "source.etcd.endpoints",
                 std::string{"expected a non-empty list of client URLs, got "}
                   + (node.IsSequence() ? "an empty list"
                                        : describe_type(node)));
      return out;
    }
    size_t index = 0;
    for (const auto& url : node) {
      auto path = "source.etcd.endpoints[" + std::to_string(index++) + "]";
      if (!url.IsScalar()
          || (url.Scalar().rfind("http://", 0) != 0
              && url.Scalar().rfind("https://", 0) != 0)
          || url.Scalar().find_first_of(" \t\r\n") != std::string::npos) {
        fail_at(url, path,
                "expected a URL like http://127.0.0.1:2379 or "
                "https://etcd1:2379, got "
                  + got(url));
        continue;
      }
      auto u = url.Scalar();
      while (u.size() > 1 && u.back() == '/')
        u.pop_back();
      out.push_back(u);
    }
    return out;
  }

  void stale_after(const YAML::Node& k, const YAML::Node& v,
                   etcd_source_config& out) {
    auto d = duration(k, v, "source.etcd.stale_after");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      d.value_or(caf::timespan{}));
    if (d && ms.count() == 0)
      fail_value(k, v, "source.etcd.stale_after",
                 "expected at least 1ms, got " + got(v));
    else if (d)
      out.stale_after = ms;
  }

  void etcd_tls(const YAML::Node& key, const YAML::Node& node,
                etcd_source_config& out) {
    bool have_cert = false;
    bool have_key = false;
    etcd::tls_files files;
    auto is_map = walk(key, node, "source.etcd.tls", {"ca", "cert", "key"},
                       [&](const YAML::Node& k, const YAML::Node& v) {
                         const auto& name = k.Scalar();
                         auto p = path_value(k, v, "source.etcd.tls." + name);
                         if (!p)
                           return;
                         if (name == "ca") {
                           files.ca = *p;
                         } else if (name == "cert") {
                           have_cert = true;
                           files.cert = *p;
                         } else {
                           have_key = true;
                           files.key = *p;
                         }
                       });
    if (!is_map)
      return;
    out.tls = std::move(files);
    if (have_cert != have_key)
      fail_at(node, have_cert ? "source.etcd.tls.key" : "source.etcd.tls.cert",
              "missing: a client certificate needs both cert and key");
  }

  void node_name(const YAML::Node& k, const YAML::Node& v,
                 const std::string& name) {
    // The name is a key segment under <prefix>nodes/.
    auto allowed = [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    };
    if (std::all_of(name.begin(), name.end(), allowed))
      cfg_.name = name;
    else
      fail_value(k, v, "name",
                 "expected letters, digits, '-', '_' or '.', got " + got(v));
  }

  /// Two writers on one path (or on each other's temporary file), or a
  /// writer on the source of truth, would fight over it; the control socket
  /// replaces what is on its path.
  void check_collisions() {
    const auto& socket = cfg_.control.socket;
    // Checked here, so that the default (beside node.yaml) is checked too.
    if (socket.size() >= sizeof(sockaddr_un{}.sun_path))
      fail(socket_mark_, "control.socket",
           "the path " + socket + " is longer than "
             + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1)
             + " bytes, the most a Unix socket can have; set a shorter one");
    if (socket == cfg_.source || socket == cfg_.config_file)
      fail(socket_mark_, "control.socket",
           "is the source or this node.yaml, which must never be replaced");
    // Against all earlier files' names at once: linear (pairs: 17 s at 10k).
    static const char* const uses[] = {"file", "temporary file"};
    std::unordered_map<std::string, std::pair<size_t, int>> used;
    used.reserve(3 * cfg_.files.size());
    for (size_t i = 0; i < cfg_.files.size(); ++i) {
      const auto& [key, mark] = path_marks_[i];
      const auto& p = cfg_.files[i].path;
      if (fs::path{p}.filename() == folder_lock_name) // its own folder's lock
        fail(mark, key + ".path",
             std::string{"is named "} + folder_lock_name
               + ", the lock file mcfgd keeps in each folder it writes to");
      if (!cfg_.source.empty() && p == cfg_.source)
        fail(mark, key + ".path",
             "is the source of truth itself (`source`), which must never be "
             "overwritten");
      if (p == cfg_.config_file)
        fail(mark, key + ".path",
             "is this node.yaml itself, which must never be overwritten");
      const std::string names[] = {p, p + ".tmp", folder_lock_of(p)};
      for (int use = 0; use < 2; ++use) {
        auto it = used.find(names[use]);
        // Temp files meet only where files do; a lock, by its name (above).
        if (it == used.end() || use + it->second.second > 1)
          continue;
        auto [j, their_use] = it->second;
        const auto& other = path_marks_[j].first;
        fail(mark, key + ".path",
             use + their_use == 0
               ? "same file as " + other + " (" + p + ")"
               : std::string{"collides with the "} + uses[use + their_use]
                   + " of " + other + " (" + p + " vs " + cfg_.files[j].path
                   + ")");
      }
      for (int use = 0; use < 3; ++use)
        used.emplace(names[use], std::pair{i, use});
    }
    if (auto it = used.find(socket); it != used.end())
      fail(socket_mark_, "control.socket",
           (it->second.second == 2 ? "is the lock file of the folder of "
                                   : "collides with the maintained file ")
             + cfg_.files[it->second.first].path);
  }

  node_config cfg_;
  source_mark socket_mark_;
  std::vector<std::pair<std::string, source_mark>> path_marks_;
};

fs::path absolute_path(const std::string& path) {
  std::error_code ec;
  auto abs = fs::absolute(path, ec);
  return (ec ? fs::path{path} : abs).lexically_normal();
}

} // namespace

node_config_result parse_node_config(std::string_view text,
                                     const std::string& path) {
  return node_parser{path, absolute_path(path)}.run(text);
}

node_config_result load_node_config(const std::string& path) {
  int err = 0;
  auto text = read_text_file(path, err);
  if (!text) {
    node_config_result result;
    result.errors.push_back({path, 0, 0, "",
                             "cannot read the node configuration: "
                               + std::generic_category().message(err)});
    return result;
  }
  return parse_node_config(*text, path);
}

} // namespace mcfg
