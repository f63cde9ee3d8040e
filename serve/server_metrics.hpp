#pragma once
// troupe::serve::ServerMetrics: what /metrics reports, in the Prometheus text format, named after
// vLLM's `vllm:` metrics with the prefix `troupe:` so dashboards map over.
//
// Contract. The server records what it measures itself — requests finished by reason, prompt and
// generation tokens, time to first token, inter-token latency, end-to-end latency, HTTP responses
// by status, requests in flight — and render() adds the cluster's own view from a ClusterStatus
// (running and waiting sequences, KV cache usage, preemptions, state, ranks). Histograms use vLLM's buckets.
//
// Threads/lifetime. Every method may be called from any thread at once (one mutex; recording is a
// few additions). The object is owned by the OpenAIServer and outlives its requests.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace troupe::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of `name` (caller holds the lock).
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  void request_started();  // a generation request went to the cluster
  void request_finished(FinishReason reason, int64_t prompt_tokens, int64_t generation_tokens, double e2e_seconds);
  void first_token(double ttft_seconds);
  void inter_token(double seconds);
  void http_response(int status);

  int64_t in_flight() const;
  // The whole /metrics body; `status` is null when the cluster did not answer.
  std::string render(const ClusterStatus* status, int open_connections) const;

 private:
  mutable std::mutex mutex_;
  int64_t in_flight_ = 0;
  std::map<std::string, uint64_t> finished_by_reason_;
  std::map<int, uint64_t> http_by_status_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  Histogram ttft_, itl_, e2e_;
};

}  // namespace troupe::serve
