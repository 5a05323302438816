#pragma once
// A strict reader of Prometheus' text exposition format (0.0.4), for the
// metrics tests: every line is a HELP, a TYPE or a sample; a sample belongs
// to the family most recently declared by TYPE (no family twice); label
// values are quoted with \\, \" and \n escapes; values are numbers. Anything
// else is an error naming the line.
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mcfg::test {

struct prometheus_sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct prometheus_text {
  /// Family name -> type (counter, gauge, ...).
  std::map<std::string, std::string> types;
  std::vector<prometheus_sample> samples;
  /// Empty when the text is well-formed.
  std::string error;

  /// The value of `name` with label file=`file` (no labels when empty).
  std::optional<double> value(const std::string& name,
                              const std::string& file = {}) const {
    for (auto& s : samples)
      if (s.name == name
          && (file.empty()
                ? s.labels.empty()
                : s.labels.count("file") && s.labels.at("file") == file))
        return s.value;
    return std::nullopt;
  }
};

namespace detail {

inline bool metric_name_ok(const std::string& x) {
  if (x.empty() || std::isdigit(static_cast<unsigned char>(x[0])))
    return false;
  for (char c : x)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':')
      return false;
  return true;
}

/// Reads `{a="x",b="y"}` from `line` at `pos` (just after the name).
inline bool read_labels(const std::string& line, size_t& pos,
                        std::map<std::string, std::string>& out) {
  if (pos >= line.size() || line[pos] != '{')
    return true;
  ++pos;
  while (pos < line.size() && line[pos] != '}') {
    auto eq = line.find('=', pos);
    if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
      return false;
    auto key = line.substr(pos, eq - pos);
    if (!metric_name_ok(key) || out.count(key))
      return false;
    std::string value;
    pos = eq + 2;
    for (;; ++pos) {
      if (pos >= line.size())
        return false;
      char c = line[pos];
      if (c == '"')
        break;
      if (c == '\\') {
        if (++pos >= line.size())
          return false;
        char e = line[pos];
        if (e == 'n')
          value += '\n';
        else if (e == '\\' || e == '"')
          value += e;
        else
          return false;
      } else {
        value += c;
      }
    }
    out[key] = value;
    ++pos; // the closing quote
    if (pos < line.size() && line[pos] == ',')
      ++pos;
  }
  if (pos >= line.size())
    return false;
  ++pos; // '}'
  return true;
}

} // namespace detail

inline prometheus_text parse_prometheus_text(const std::string& text) {
  prometheus_text out;
  std::istringstream in{text};
  std::string line;
  std::string family;
  std::set<std::string> helped;
  int number = 0;
  auto fail = [&](const std::string& why) {
    out.error = "line " + std::to_string(number) + ": " + why + ": " + line;
    return out;
  };
  if (!text.empty() && text.back() != '\n')
    return fail("the text must end with a newline");
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto name = rest.substr(0, rest.find(' '));
      if (!detail::metric_name_ok(name) || !helped.insert(name).second)
        return fail("bad or repeated HELP");
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words{line.substr(7)};
      std::string name, type, extra;
      words >> name >> type;
      static const std::set<std::string> known{"counter", "gauge", "histogram",
                                               "summary", "untyped"};
      if (!detail::metric_name_ok(name) || !known.count(type)
          || (words >> extra) || out.types.count(name))
        return fail("bad or repeated TYPE");
      if (type == "counter"
          && (name.size() < 6
              || name.compare(name.size() - 6, 6, "_total") != 0))
        return fail("a counter's name must end in _total");
      out.types[name] = type;
      family = name;
      continue;
    }
    if (line.empty() || line[0] == '#')
      return fail("neither HELP, TYPE nor a sample");
    prometheus_sample s;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ')
      ++pos;
    s.name = line.substr(0, pos);
    if (!detail::metric_name_ok(s.name))
      return fail("bad metric name");
    if (s.name != family)
      return fail("a sample outside its family's TYPE block");
    if (!detail::read_labels(line, pos, s.labels))
      return fail("bad labels");
    if (pos >= line.size() || line[pos] != ' ')
      return fail("no value");
    auto value = line.substr(pos + 1);
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0')
      return fail("the value is not a number");
    out.samples.push_back(std::move(s));
  }
  return out;
}

} // namespace mcfg::test
