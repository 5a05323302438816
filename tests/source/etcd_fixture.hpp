#pragma once
// What the etcd suites share: one cluster for the cases that only touch
// their own prefix (starting one costs about a second), client options
// for a cluster, and the code of an etcd_error.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>

#include "memcached_cfg/etcd/client.hpp"
#include "support/etcd_cluster.hpp"

namespace mcfg::test {

inline etcd::client_options options_for(const etcd_cluster& cluster) {
  etcd::client_options opts;
  opts.endpoints = cluster.endpoints();
  opts.request_timeout = std::chrono::milliseconds(1500);
  opts.retry_for = std::chrono::seconds(4);
  return opts;
}

inline etcd_cluster& shared_cluster() {
  static etcd_cluster cluster;
  return cluster;
}

inline etcd::etcd_errc error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const etcd::etcd_error& e) {
    return e.code();
  }
  FAIL("no etcd_error thrown");
  return etcd::etcd_errc::rejected;
}

} // namespace mcfg::test
