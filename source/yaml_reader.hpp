#pragma once
// yaml_reader: the skeleton both YAML loaders share (the source document and
// node.yaml). It reads exactly one document, records problems with file,
// line, column and key, and hands back a value or every problem found, in
// document order. A loader derives from it and adds its schema.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "memcached_cfg/source/located_error.hpp"

namespace mcfg {

class yaml_reader {
public:
  /// `file` names the file in errors.
  explicit yaml_reader(std::string file) : file_(std::move(file)) {
  }

  const std::string& file() const {
    return file_;
  }

  /// yaml-cpp's 0-based mark as a 1-based position; unknown stays 0.
  static source_mark mark_of(const YAML::Mark& m);
  static source_mark mark_of(const YAML::Node& n) {
    return mark_of(n.Mark());
  }

  /// Where to point for a value: an empty value (`password:`) has no
  /// position of its own that makes sense (yaml-cpp puts it at the next
  /// token), so its key's is used.
  static source_mark value_mark(const YAML::Node& key,
                                const YAML::Node& value) {
    return value.IsNull() ? mark_of(key) : mark_of(value);
  }

  /// What a node is, for "expected ..., got ..." messages.
  static const char* describe_type(const YAML::Node& n);

protected:
  /// Rewrites a yaml-cpp message before it is shown (e.g. to drop a quoted
  /// value that may be secret).
  using message_filter = std::string (*)(const std::string&);

  /// The root of the one document in `text`; nothing, with the problem
  /// recorded, when the text does not parse (yaml-cpp's message through
  /// `filter`), holds no document (`empty_message`) or more than one.
  std::optional<YAML::Node> read_document(std::string_view text,
                                          const std::string& empty_message,
                                          message_filter filter = nullptr);

  void fail(source_mark at, std::string key, std::string message) {
    errors_.push_back(
      {file_, at.line, at.column, std::move(key), std::move(message)});
  }

  void fail_at(const YAML::Node& n, std::string key, std::string message) {
    fail(mark_of(n), std::move(key), std::move(message));
  }

  void fail_value(const YAML::Node& key, const YAML::Node& value,
                  std::string path, std::string message) {
    fail(value_mark(key, value), std::move(path), std::move(message));
  }

  size_t error_count() const {
    return errors_.size();
  }

  /// `value` when no problem was recorded, else every problem, in document
  /// order (those without a position first).
  template <class T>
  load_result<T> finish(T value) {
    load_result<T> result;
    if (errors_.empty()) {
      result.value = std::move(value);
      return result;
    }
    result.errors = std::move(errors_);
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const located_error& x, const located_error& y) {
                       return std::tie(x.line, x.column)
                              < std::tie(y.line, y.column);
                     });
    return result;
  }

private:
  std::string file_;
  std::vector<located_error> errors_;
};

/// Reads the whole file at `path`: its bytes, or nothing with `err` set to
/// the OS error.
std::optional<std::string> read_text_file(const std::string& path, int& err);

} // namespace mcfg
