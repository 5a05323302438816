#include "memcached_cfg/etcd/detail/watch_stream.hpp"

#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include "memcached_cfg/etcd/detail/wire.hpp"

namespace mcfg::etcd::detail {

namespace {

watch_item item_of(watch_item::kind_t kind, std::string message = {}) {
  watch_item item;
  item.kind = kind;
  item.message = std::move(message);
  return item;
}

/// An error the gateway put in the stream; its message, never empty (the
/// client tells an ended watch from a broken one by it).
std::string error_text(const json& err) {
  auto text = err.is_object() ? err.value("message", std::string{})
                              : err.dump();
  return text.empty() ? "the gateway ended the watch" : text;
}

watch_event to_event(const json& e) {
  watch_event ev;
  ev.kind = e.value("type", std::string{"PUT"}) == "DELETE" ? watch_event::del
                                                            : watch_event::put;
  ev.kv = to_key_value(e.value("kv", json::object()));
  // The client resumes from the revision after the last one delivered: one
  // that cannot be counted on from is no revision.
  if (ev.kv.mod_revision < 1
      || ev.kv.mod_revision == std::numeric_limits<int64_t>::max())
    throw etcd_error(etcd_errc::rejected,
                     "etcd sent a watch event without a valid revision");
  return ev;
}

/// A result's events, one item per revision (a response may hold several
/// revisions when the watch catches up; one revision's events are never
/// split across responses).
void add_revisions(const json& events, std::vector<watch_item>& out) {
  if (events.is_null())
    return;
  if (!events.is_array())
    throw etcd_error(etcd_errc::rejected, "etcd sent events that are no list");
  watch_revision batch;
  for (auto& e : events) {
    auto ev = to_event(e);
    if (ev.kv.mod_revision != batch.revision && !batch.events.empty()) {
      out.push_back(item_of(watch_item::revision));
      out.back().batch = std::move(batch);
      batch = {};
    }
    batch.revision = ev.kv.mod_revision;
    batch.events.push_back(std::move(ev));
  }
  if (!batch.events.empty()) {
    out.push_back(item_of(watch_item::revision));
    out.back().batch = std::move(batch);
  }
}

/// A WatchResponse's items, in the order the client acts on them: a
/// cancellation alone (etcd may mark it created too), else created, then
/// the events.
std::vector<watch_item> result_items(const json& r) {
  if (!r.is_object())
    throw etcd_error(etcd_errc::rejected, "etcd sent a watch result that is "
                                          "not an object");
  std::vector<watch_item> out;
  if (r.value("canceled", false)) {
    if (auto compact = int_field(r, "compact_revision"); compact > 0) {
      out.push_back(item_of(watch_item::compacted));
      out.back().compact_revision = compact;
    } else {
      auto reason = r.value("cancel_reason", std::string{});
      out.push_back(item_of(watch_item::canceled,
                            reason.empty() ? "watch cancelled" : reason));
    }
    return out;
  }
  bool created = r.value("created", false);
  if (created)
    out.push_back(item_of(watch_item::created));
  if (auto events = r.find("events"); events != r.end())
    add_revisions(*events, out);
  // etcd's progress notification is an otherwise empty result: its header
  // revision is what the client counts as proof that the watch is caught
  // up (a header without a revision proves nothing, and says nothing).
  if (out.empty()) {
    auto header = r.find("header");
    auto revision = header == r.end() ? 0 : int_field(*header, "revision");
    if (revision > 0) {
      out.push_back(item_of(watch_item::progress));
      out.back().batch.revision = revision;
    }
  }
  return out;
}

bool is_final(watch_item::kind_t kind) {
  return kind != watch_item::created && kind != watch_item::revision
         && kind != watch_item::progress;
}

} // namespace

void watch_stream::feed(std::string_view bytes) noexcept {
  try {
    while (!ended_ && !bytes.empty()) {
      auto nl = bytes.find('\n');
      auto piece = bytes.substr(0, nl);
      if (piece.size() > max_line_ - partial_.size()) {
        end_with(watch_item::malformed,
                 "etcd sent a watch message longer than this client reads");
        return;
      }
      partial_.append(piece);
      if (nl == std::string_view::npos)
        return;
      bytes.remove_prefix(nl + 1);
      auto line = std::move(partial_);
      partial_.clear();
      take_line(line);
    }
  } catch (const etcd_error& e) {
    end_with(watch_item::malformed, e.what());
  } catch (...) {
    // nlohmann's type errors, or memory: nothing of the line is trusted.
    end_with(watch_item::malformed,
             "etcd sent a watch message this client cannot read");
  }
}

std::optional<watch_item> watch_stream::next() noexcept {
  if (items_.empty())
    return std::nullopt;
  auto item = std::move(items_.front());
  items_.pop_front();
  return item;
}

void watch_stream::take_line(const std::string& line) {
  if (line.find_first_not_of(" \r\t") == std::string::npos)
    return; // a keep-alive
  // Not throwing: invalid JSON, invalid UTF-8 and numbers out of a double's
  // range (1e400) all come back as "discarded".
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object()) {
    end_with(watch_item::malformed,
             "etcd sent a watch message that is not a JSON object");
    return;
  }
  std::vector<watch_item> found;
  if (auto err = j.find("error"); err != j.end())
    found.push_back(item_of(watch_item::error, error_text(*err)));
  else if (auto r = j.find("result"); r != j.end())
    found = result_items(*r);
  // Else nothing for this watch (the gateway may add fields).
  for (auto& item : found) {
    ended_ = is_final(item.kind);
    items_.push_back(std::move(item));
    if (ended_)
      return;
  }
}

void watch_stream::end_with(watch_item::kind_t kind,
                            const char* message) noexcept {
  ended_ = true;
  std::string{}.swap(partial_); // its memory too
  try {
    items_.push_back(item_of(kind, message));
  } catch (...) {
    // Out of memory: the stream ends without its item (ended() says so).
  }
}

} // namespace mcfg::etcd::detail
