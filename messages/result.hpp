#pragma once
// result<T, E>: a value, or why there is none. The one way the daemon's code
// (source/, node/, control/, programs/) returns an error that is not an
// actor's caf::error (docs/ARCHITECTURE.md §2, "Errors"). E is `failure` unless
// the caller needs more than a message: the control API's backend_error carries
// an HTTP status too. A message names files, keys and revisions, never a
// secret. The etcd client, a general-purpose library with no header of
// ours, throws etcd_error instead; its callers turn that into a result.
// Lists of located errors (a YAML file with several problems) are
// load_result (source/located_error.hpp), not this.
//
// Not installed: the library's own headers never return one.
#include <string>
#include <utility>
#include <variant>

namespace mcfg {

/// Why something could not be done, for a person to read.
struct failure {
  std::string message;
};

template <class T, class E = failure>
class [[nodiscard]] result {
public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {
  }

  result(E why) : v_(std::in_place_index<1>, std::move(why)) {
  }

  bool ok() const noexcept {
    return v_.index() == 0;
  }

  explicit operator bool() const noexcept {
    return ok();
  }

  T& value() & {
    return std::get<0>(v_);
  }

  const T& value() const& {
    return std::get<0>(v_);
  }

  T&& value() && {
    return std::get<0>(std::move(v_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  /// Only when !ok().
  const E& error() const {
    return std::get<1>(v_);
  }

private:
  std::variant<T, E> v_;
};

/// Success without a value, or why not.
template <class E>
class [[nodiscard]] result<void, E> {
public:
  result() = default;

  result(E why) : why_(std::move(why)), failed_(true) {
  }

  bool ok() const noexcept {
    return !failed_;
  }

  explicit operator bool() const noexcept {
    return ok();
  }

  /// Only when !ok().
  const E& error() const {
    return why_;
  }

private:
  E why_{};
  bool failed_ = false;
};

/// A failure naming `message`, for `return fail("...")`.
inline failure fail(std::string message) {
  return failure{std::move(message)};
}

} // namespace mcfg
