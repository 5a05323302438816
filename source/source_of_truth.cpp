#include "memcached_cfg/source/source_of_truth.hpp"

#include <algorithm>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "memcached_cfg/source/source_document.hpp"

namespace mcfg {

std::shared_ptr<source_of_truth> source_of_truth::make() {
  return std::shared_ptr<source_of_truth>{new source_of_truth({}, 0)};
}

std::shared_ptr<source_of_truth> source_of_truth::make(snapshot initial) {
  return std::shared_ptr<source_of_truth>{
    new source_of_truth(std::move(initial), 1)};
}

source_of_truth::source_of_truth(snapshot initial, uint64_t version)
  : current_(std::move(initial)), version_(version) {
}

versioned_snapshot source_of_truth::read() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return {version_, current_};
}

uint64_t source_of_truth::version() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return version_;
}

size_t source_of_truth::subscriber_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return subscribers_.size() - gone_;
}

void source_of_truth::subscribe(const update_subscriber& who) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    id = ++next_id_;
    subscribers_.push_back({id, caf::actor_cast<caf::actor_addr>(who)});
  }
  std::weak_ptr<source_of_truth> weak = shared_from_this();
  caf::actor_cast<caf::abstract_actor*>(who)->attach_functor([weak, id] {
    if (auto self = weak.lock())
      self->unsubscribe(id);
  });
}

void source_of_truth::unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = std::lower_bound(subscribers_.begin(), subscribers_.end(), id,
                            [](const subscriber& x, uint64_t wanted) {
                              return x.id < wanted;
                            });
  if (i == subscribers_.end() || i->id != id || !i->handle)
    return;
  i->handle = caf::actor_addr{};
  if (++gone_ * 2 < subscribers_.size())
    return;
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [](auto& x) { return !x.handle; }),
                     subscribers_.end());
  gone_ = 0;
}

config_update source_of_truth::publish(snapshot next) {
  std::lock_guard<std::mutex> guard{mtx_};
  config_update update{version_, diff(current_, next)};
  if (update.changes.empty())
    return update;
  current_ = std::move(next);
  update.version = ++version_;
  for (auto& sub : subscribers_)
    if (auto who = caf::actor_cast<update_subscriber>(sub.handle))
      caf::anon_send(who, change_atom::value, update);
  return update;
}

} // namespace mcfg
