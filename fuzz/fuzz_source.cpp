// libFuzzer target: the source loader, parse_source(text, file).
//
// Properties:
// - a document or at least one error, never both; every error names the
//   file, has a message and a sane position;
// - a loaded document is what source_document.hpp promises: only
//   `users/<name>` keys, each {password: string, roles: list of non-empty
//   strings}, each with a mark, locate() pointing at it;
// - diff(values, values) is empty; diff({}, values) has one added change per
//   key, in key order, carrying the value; diff(values, {}) one removal each;
// - no error message carries a value of the document: when the input is
//   valid YAML (checked with yaml-cpp directly), no message contains a
//   distinctive scalar value (see below); when it is not, the message is
//   "invalid YAML: " and one of yaml-cpp's fixed messages, never a fragment
//   of the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "fuzz/fuzz_common.hpp"

namespace {

const std::string file_name = "fuzz/cluster.yaml";

void check_document(const mcfg::source_document& doc) {
  FUZZ_CHECK(doc.file == file_name);
  const auto& values = doc.values;
  FUZZ_CHECK(doc.marks.count("users") == 1);
  for (auto& [key, value] : values) {
    FUZZ_CHECK(key.compare(0, mcfg::users_prefix.size(), mcfg::users_prefix)
               == 0);
    auto dict = caf::get_if<mcfg::config_value::dictionary>(&value.get_data());
    FUZZ_CHECK(dict != nullptr);
    FUZZ_CHECK(dict->size() == 2);
    FUZZ_CHECK(mcfg_fuzz::string_field(value, "password") != nullptr);
    auto roles = dict->find("roles");
    FUZZ_CHECK(roles != dict->end());
    auto list = caf::get_if<mcfg::config_value::list>(
      &roles->second.get_data());
    FUZZ_CHECK(list != nullptr);
    for (auto& role : *list) {
      auto str = caf::get_if<std::string>(&role.get_data());
      FUZZ_CHECK(str != nullptr && !str->empty());
    }
    auto mark = doc.marks.find(key);
    FUZZ_CHECK(mark != doc.marks.end());
    FUZZ_CHECK(mark->second.line > 0 && mark->second.column > 0);
    auto located = doc.locate(key + "/password", "m");
    FUZZ_CHECK(located.file == file_name && located.line > 0);
  }

  FUZZ_CHECK(mcfg::diff(values, values).empty());
  auto added = mcfg::diff({}, values);
  FUZZ_CHECK(added.size() == values.size());
  auto it = values.begin();
  for (auto& change : added) {
    FUZZ_CHECK(!change.removed);
    FUZZ_CHECK(change.key == it->first);
    FUZZ_CHECK(change.value == it->second);
    ++it;
  }
  auto removed = mcfg::diff(values, {});
  FUZZ_CHECK(removed.size() == values.size());
  it = values.begin();
  for (auto& change : removed) {
    FUZZ_CHECK(change.removed);
    FUZZ_CHECK(change.key == it->first);
    ++it;
  }
}

// -- no value in an error message --------------------------------------------

/// Project messages are built from fixed English text, type names and
/// numbers; a value containing one of these bytes cannot appear in one by
/// coincidence, so finding it there means the value was echoed.
bool distinctive(const std::string& s) {
  if (s.size() < 4)
    return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || (c < 0x20 && c != '\n')
        || std::string_view{"!#$%&*+<=>?@[\\]^|~"}.find(ch)
             != std::string_view::npos)
      return true;
  }
  return false;
}

/// Every scalar of `n` that is not a mapping key: passwords, roles, and any
/// misplaced value. Aliases make the document a graph, exponential to walk
/// (`b: &b [*a, *a]`, ...) or cyclic (`a: &u {b: *u}`), so the walk stops
/// after `budget` nodes and below `depth`; the loader itself never walks
/// more than users -> user -> roles.
void collect_values(const YAML::Node& n, std::vector<std::string>& out,
                    int& budget, int depth = 0) {
  if (--budget < 0 || depth > 64)
    return;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
  } else if (n.IsSequence()) {
    for (const auto& x : n)
      collect_values(x, out, budget, depth + 1);
  } else if (n.IsMap()) {
    for (const auto& kv : n)
      collect_values(kv.second, out, budget, depth + 1);
  }
}

bool is_yaml_cpp_message(std::string_view msg) {
  // Every fixed message yaml-cpp's parser throws (exceptions.h), with the
  // trailing ": " the loader strips from the two that carry input.
  static const char* const fixed[] = {
    YAML::ErrorMsg::YAML_DIRECTIVE_ARGS,
    YAML::ErrorMsg::YAML_MAJOR_VERSION,
    YAML::ErrorMsg::REPEATED_YAML_DIRECTIVE,
    YAML::ErrorMsg::TAG_DIRECTIVE_ARGS,
    YAML::ErrorMsg::REPEATED_TAG_DIRECTIVE,
    YAML::ErrorMsg::CHAR_IN_TAG_HANDLE,
    YAML::ErrorMsg::TAG_WITH_NO_SUFFIX,
    YAML::ErrorMsg::END_OF_VERBATIM_TAG,
    YAML::ErrorMsg::END_OF_MAP,
    YAML::ErrorMsg::END_OF_MAP_FLOW,
    YAML::ErrorMsg::END_OF_SEQ,
    YAML::ErrorMsg::END_OF_SEQ_FLOW,
    YAML::ErrorMsg::MULTIPLE_TAGS,
    YAML::ErrorMsg::MULTIPLE_ANCHORS,
    YAML::ErrorMsg::MULTIPLE_ALIASES,
    YAML::ErrorMsg::ALIAS_CONTENT,
    YAML::ErrorMsg::INVALID_HEX,
    "invalid unicode",
    "unknown escape character",
    YAML::ErrorMsg::UNKNOWN_TOKEN,
    YAML::ErrorMsg::DOC_IN_SCALAR,
    YAML::ErrorMsg::EOF_IN_SCALAR,
    YAML::ErrorMsg::CHAR_IN_SCALAR,
    YAML::ErrorMsg::TAB_IN_INDENTATION,
    YAML::ErrorMsg::FLOW_END,
    YAML::ErrorMsg::BLOCK_ENTRY,
    YAML::ErrorMsg::MAP_KEY,
    YAML::ErrorMsg::MAP_VALUE,
    YAML::ErrorMsg::ALIAS_NOT_FOUND,
    YAML::ErrorMsg::ANCHOR_NOT_FOUND,
    YAML::ErrorMsg::CHAR_IN_ALIAS,
    YAML::ErrorMsg::CHAR_IN_ANCHOR,
    YAML::ErrorMsg::ZERO_INDENT_IN_BLOCK,
    YAML::ErrorMsg::CHAR_IN_BLOCK,
    YAML::ErrorMsg::AMBIGUOUS_ANCHOR,
    YAML::ErrorMsg::UNKNOWN_ANCHOR,
    YAML::ErrorMsg::INVALID_NODE,
    YAML::ErrorMsg::INVALID_SCALAR,
    YAML::ErrorMsg::UNMATCHED_GROUP_TAG,
    YAML::ErrorMsg::UNEXPECTED_END_SEQ,
    YAML::ErrorMsg::UNEXPECTED_END_MAP,
    YAML::ErrorMsg::SINGLE_QUOTED_CHAR,
    YAML::ErrorMsg::INVALID_ANCHOR,
    YAML::ErrorMsg::INVALID_ALIAS,
    YAML::ErrorMsg::INVALID_TAG,
  };
  for (auto m : fixed)
    if (msg == m)
      return true;
  // `%YAML <version>`: the directive's argument, never a value.
  std::string_view version{YAML::ErrorMsg::YAML_VERSION};
  if (msg.compare(0, version.size(), version) == 0)
    return true;
  // yaml-cpp 0.7's depth guard (DeepRecursion, nesting deeper than 500)
  // says "bad file".
  return msg == YAML::ErrorMsg::BAD_FILE;
}

void check_no_values_in_errors(std::string_view text,
                               const std::vector<mcfg::located_error>& errs) {
  constexpr std::string_view yaml_prefix = "invalid YAML: ";
  for (auto& e : errs)
    if (e.message.compare(0, yaml_prefix.size(), yaml_prefix) == 0)
      FUZZ_CHECK(is_yaml_cpp_message(
        std::string_view{e.message}.substr(yaml_prefix.size())));
  // The first document only: YAML::LoadAll never returns on some inputs in
  // yaml-cpp 0.7 (a stray ',', jbeder/yaml-cpp#1040); YAML::Load does.
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string{text});
  } catch (const YAML::Exception&) {
    return;
  }
  std::vector<std::string> values;
  int budget = 10'000;
  collect_values(doc, values, budget);
  for (auto& v : values) {
    if (!distinctive(v))
      continue;
    for (auto& e : errs)
      FUZZ_CHECK(e.message.find(v) == std::string::npos);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = mcfg_fuzz::as_text(data, size);
  auto result = mcfg::parse_source(text, file_name);
  mcfg_fuzz::check_errors_contract(result.value.has_value(), result.errors,
                                   file_name);
  FUZZ_CHECK(result.ok() == result.value.has_value());
  if (result.value)
    check_document(*result.value);
  else
    check_no_values_in_errors(text, result.errors);
  return 0;
}
