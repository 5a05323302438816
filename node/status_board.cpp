#include "memcached_cfg/node/status_board.hpp"

#include <algorithm>
#include <utility>

namespace mcfg {

namespace {

void grow(caf::timespan& d, caf::timespan elapsed) {
  if (d.count() >= 0)
    d += elapsed;
}

} // namespace

writer_status aged(writer_status st, caf::timespan elapsed) {
  if (elapsed.count() <= 0)
    return st;
  grow(st.since_last_change, elapsed);
  grow(st.since_last_write, elapsed);
  grow(st.failing_for, elapsed);
  grow(st.attempt_running_for, elapsed);
  return st;
}

refresh_status aged(refresh_status st, caf::timespan elapsed) {
  if (elapsed.count() <= 0)
    return st;
  if (st.next_retry_in.count() >= 0)
    st.next_retry_in = std::max(st.next_retry_in - elapsed, caf::timespan{0});
  grow(st.verifying_for, elapsed);
  return st;
}

status_board::status_board(std::vector<std::string> files)
  : paths_(std::move(files)), files_(paths_.size()) {
}

void status_board::publish_file(size_t index, writer_status st, time_point at) {
  // The board knows each file's path: not one more copy per file.
  std::string{}.swap(st.path);
  // Made outside the lock: the lock only swaps a pointer.
  auto value = std::make_shared<const writer_status>(std::move(st));
  std::lock_guard<std::mutex> guard{mtx_};
  if (index >= files_.size())
    return;
  files_[index] = {std::move(value), at};
  ++generation_;
}

void status_board::publish_refresh(refresh_status st, time_point at) {
  auto value = std::make_shared<const refresh_status>(std::move(st));
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = refreshes_[value->path];
  slot = {std::move(value), at};
  ++generation_;
}

uint64_t status_board::generation() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return generation_;
}

status_board::snapshot status_board::read(time_point now) const {
  std::vector<entry<writer_status>> files;
  std::vector<entry<refresh_status>> refreshes;
  snapshot out;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    files = files_;
    refreshes.reserve(refreshes_.size());
    for (auto& [path, e] : refreshes_)
      refreshes.push_back(e);
    out.generation = generation_;
  }
  out.files.reserve(files.size());
  out.published.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    auto& e = files[i];
    out.published.push_back(e.value != nullptr);
    if (e.value)
      out.files.push_back(aged(*e.value, now - e.at));
    else
      out.files.emplace_back();
    out.files.back().path = paths_[i];
  }
  out.refreshes.reserve(refreshes.size());
  for (auto& e : refreshes)
    out.refreshes.push_back(aged(*e.value, now - e.at));
  return out;
}

} // namespace mcfg
