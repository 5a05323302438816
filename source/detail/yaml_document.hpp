#pragma once
// Loading exactly one YAML document, for the source and node.yaml loaders
// (both link yaml-cpp privately; this header is theirs alone).
//
// Not YAML::LoadAll: in yaml-cpp 0.7 (Debian 12) it never returns on some
// inputs, e.g. a stray ',' (jbeder/yaml-cpp#1040): the parser reports an
// empty document without consuming the token, and LoadAll loops, growing
// without bound. Here the parser is asked for at most two documents.
#include <optional>
#include <variant>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include "source/source_document.hpp" // source_mark

namespace mcfg::detail {

/// yaml-cpp's 0-based mark as a 1-based position; unknown stays 0.
inline source_mark to_mark(const YAML::Mark& m) {
  if (m.line < 0 || m.column < 0)
    return {};
  return {m.line + 1, m.column + 1};
}

/// What a node is, for "expected ..., got ..." messages.
inline const char* describe_type(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an undefined node";
  }
}

struct yaml_document {
  /// The first document; undefined when the text holds none.
  YAML::Node root;
  bool empty = true;
  /// Where a second document starts, if the text holds more than one.
  std::optional<YAML::Mark> second;
};

/// Throws YAML::Exception, as YAML::Load does, for text that does not parse.
inline yaml_document load_yaml_document(const std::string& text) {
  struct document_starts : YAML::EventHandler {
    std::vector<YAML::Mark> marks;
    void OnDocumentStart(const YAML::Mark& mark) override {
      marks.push_back(mark);
    }
    void OnDocumentEnd() override {
    }
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {
    }
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
    }
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {
    }
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
    }
    void OnSequenceEnd() override {
    }
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
    }
    void OnMapEnd() override {
    }
  };
  document_starts starts;
  std::istringstream in{text};
  YAML::Parser parser{in};
  for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
  }
  yaml_document out;
  out.empty = starts.marks.empty();
  if (starts.marks.size() > 1)
    out.second = starts.marks[1];
  if (!out.empty)
    out.root = YAML::Load(text);
  return out;
}

/// Why a text holds no single document: where (when known) and what.
struct yaml_problem {
  std::optional<YAML::Mark> mark;
  std::string message;
};

/// The one document of `text`, or the problem: text that does not parse
/// (yaml-cpp's message passed through `clean`), no document
/// (`empty_message`), or more than one.
template <class Clean>
std::variant<YAML::Node, yaml_problem>
load_single_document(const std::string& text, const std::string& empty_message,
                     Clean clean) {
  yaml_document doc;
  try {
    doc = load_yaml_document(text);
  } catch (const YAML::Exception& e) {
    return yaml_problem{e.mark, "invalid YAML: " + clean(e.msg)};
  }
  if (doc.empty)
    return yaml_problem{std::nullopt, empty_message};
  if (doc.second)
    return yaml_problem{doc.second, "expected one YAML document, found more"};
  return doc.root;
}

} // namespace mcfg::detail
