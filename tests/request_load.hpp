#pragma once
// RequestLoad: requests submitted at once on one Client — their tokens counted as they stream,
// every FinishedEvent kept in submission order — for the tests that drive a real cluster and wait
// for it (every wait bounded). reference_requests(): the reference cases as greedy requests.
// Lives as long as its requests may still call back: keep it until wait() has returned.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "actors/client.hpp"
#include "bench/cluster_process.hpp"
#include "tests/deadlines.hpp"
#include "tests/reference_cases.hpp"

namespace troupe::test {

class RequestLoad {
 public:
  RequestLoad(Client& client, const std::vector<SubmitRequest>& requests) : results_(requests.size()) {
    for (size_t i = 0; i < requests.size(); ++i)
      ids_.push_back(client.submit(
          requests[i],
          [this](const TokenEvent&) {
            std::lock_guard lock(mutex_);
            ++tokens_;
            cv_.notify_all();
          },
          [this, i](const FinishedEvent& e) {
            std::lock_guard lock(mutex_);
            results_[i] = e;
            ++done_;
            cv_.notify_all();
          }));
  }
  const std::vector<int64_t>& ids() const { return ids_; }
  // Waits until `n` tokens have streamed over all requests (false at the deadline, scaled()).
  bool wait_for_tokens(int64_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, scaled(deadline), [&] { return tokens_ >= n; });
  }
  // Every request's FinishedEvent, in submission order. At the deadline (scaled()) the case fails,
  // saying how far the load got and what `explain` returns (a cluster's log, say).
  std::vector<FinishedEvent> wait(std::chrono::milliseconds deadline,
                                  const std::function<std::string()>& explain = {}) {
    std::unique_lock lock(mutex_);
    deadline = scaled(deadline);
    const bool all_done = cv_.wait_for(lock, deadline, [&] { return done_ == results_.size(); });
    std::string why;
    if (!all_done) {
      why = std::to_string(done_) + " of " + std::to_string(results_.size()) + " requests finished and " +
            std::to_string(tokens_) + " tokens streamed in " + std::to_string(deadline.count()) + " ms";
      if (explain) why.append("\n").append(explain());
    }
    REQUIRE_MESSAGE(all_done, why);
    return results_;
  }
  // wait(), failing with `cluster`'s log at the deadline.
  std::vector<FinishedEvent> wait(std::chrono::milliseconds deadline, const ClusterProcess& cluster) {
    return wait(deadline, [&] { return "--- cluster log ---\n" + cluster.log(); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<FinishedEvent> results_;
  std::vector<int64_t> ids_;
  int64_t tokens_ = 0;
  size_t done_ = 0;
};

// A finished request's ids equal its reference case's greedy ids for compare_first tokens.
inline void check_reference_ids(const FinishedEvent& e, const ReferenceCase& c, size_t index) {
  INFO("case ", index, " ", e.error);
  auto ids = e.ids;
  ids.resize(std::min(ids.size(), c.compare_first));
  CHECK(ids == std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + int64_t(c.compare_first)));
}

// `n` greedy requests cycling over the reference cases, each as long as its reference.
inline std::vector<SubmitRequest> reference_requests(const std::vector<ReferenceCase>& cases, size_t n) {
  std::vector<SubmitRequest> out;
  for (size_t i = 0; i < n; ++i) {
    SubmitRequest r;
    r.prompt_ids = cases[i % cases.size()].prompt_ids;
    r.max_tokens = int64_t(cases[i % cases.size()].greedy_ids.size());
    out.push_back(r);
  }
  return out;
}

}  // namespace troupe::test
