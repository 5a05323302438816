#pragma once
// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mcfg::test {

struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    auto base = std::getenv("TMPDIR");
    std::string pattern = std::string{base ? base : "/tmp"} + "/mcfg-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }

  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }

  std::string operator/(const std::string& name) const {
    return (path / name).string();
  }
};

inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return "<missing>";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << text;
}

} // namespace mcfg::test
