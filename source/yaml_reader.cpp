#include "memcached_cfg/source/yaml_reader.hpp"

#include <cerrno>
#include <cstdio>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace mcfg {

namespace {

/// Records where each document starts and ignores everything else.
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

} // namespace

source_mark yaml_reader::mark_of(const YAML::Mark& m) {
  if (m.line < 0 || m.column < 0)
    return {};
  return {m.line + 1, m.column + 1};
}

const char* yaml_reader::describe_type(const YAML::Node& n) {
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

// Not YAML::LoadAll: in yaml-cpp 0.7 (Debian 12) it never returns on some
// inputs, e.g. a stray ',' (jbeder/yaml-cpp#1040): the parser reports an
// empty document without consuming the token, and LoadAll loops, growing
// without bound. Here the parser is asked for at most two documents.
std::optional<YAML::Node>
yaml_reader::read_document(std::string_view text,
                           const std::string& empty_message,
                           message_filter filter) {
  std::string bytes{text};
  document_starts starts;
  try {
    std::istringstream in{bytes};
    YAML::Parser parser{in};
    for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
    }
    if (starts.marks.empty()) {
      fail({}, "", empty_message);
      return std::nullopt;
    }
    if (starts.marks.size() > 1) {
      fail(mark_of(starts.marks[1]), "",
           "expected one YAML document, found more");
      return std::nullopt;
    }
    return YAML::Load(bytes);
  } catch (const YAML::Exception& e) {
    fail(mark_of(e.mark), "",
         "invalid YAML: " + (filter ? filter(e.msg) : e.msg));
    return std::nullopt;
  }
}

std::optional<std::string> read_text_file(const std::string& path, int& err) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) {
    err = errno;
    return std::nullopt;
  }
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    text.append(buf, n);
  err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0)
    return std::nullopt;
  return text;
}

} // namespace mcfg
