#include "serve/server_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "serve/openai_protocol.hpp"

namespace troupe::serve {

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
}

ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
             1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,
            0.4,   0.5,    0.75,  1.0,  2.5,   5.0,  7.5,   10.0, 20.0, 40.0, 80.0}),
      e2e_({0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
            30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}) {}

void ServerMetrics::request_started() {
  std::lock_guard lock(mutex_);
  ++in_flight_;
}

void ServerMetrics::request_finished(FinishReason reason, int64_t prompt_tokens, int64_t generation_tokens,
                                     double e2e_seconds) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  ++finished_by_reason_[finish_reason_name(reason)];
  prompt_tokens_ += uint64_t(std::max<int64_t>(0, prompt_tokens));
  generation_tokens_ += uint64_t(std::max<int64_t>(0, generation_tokens));
  e2e_.observe(e2e_seconds);
}

void ServerMetrics::first_token(double ttft_seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(ttft_seconds);
}

void ServerMetrics::inter_token(double seconds) {
  std::lock_guard lock(mutex_);
  itl_.observe(seconds);
}

void ServerMetrics::http_response(int status) {
  std::lock_guard lock(mutex_);
  ++http_by_status_[status];
}

int64_t ServerMetrics::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

std::string ServerMetrics::render(const ClusterStatus* status, int open_connections) const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
  };
  if (status) {
    gauge("troupe:num_requests_running", "Sequences the cluster's scheduler is running.", double(status->running));
    gauge("troupe:num_requests_waiting", "Sequences waiting in the cluster's scheduler.", double(status->waiting));
    out +=
        "# HELP troupe:num_preemptions_total Preemptions (recompute) in the cluster's scheduler.\n"
        "# TYPE troupe:num_preemptions_total counter\n";
    out += fmt::format("troupe:num_preemptions_total {}\n", status->preemptions);
    out +=
        "# HELP troupe:cluster_state The cluster's state (1 for the current one).\n"
        "# TYPE troupe:cluster_state gauge\n";
    for (ClusterState s : {ClusterState::Starting, ClusterState::Loading, ClusterState::Ready, ClusterState::Recovering,
                           ClusterState::Degraded})
      out += fmt::format("troupe:cluster_state{{state=\"{}\"}} {}\n", to_string(s), s == status->state ? 1 : 0);
    gauge("troupe:kv_cache_usage_perc", "Fraction of the KV cache blocks in use (1 = full).",
          status->kv_blocks_total ? double(status->kv_blocks_used) / double(status->kv_blocks_total) : 0.0);
    gauge("troupe:num_kv_cache_blocks", "KV cache blocks over every replica.", double(status->kv_blocks_total));
    gauge("troupe:cluster_ranks_ready", "Ranks that have loaded their weights.", double(status->ranks_ready));
    gauge("troupe:cluster_world_size", "Ranks the cluster has.", double(status->world_size));
    out +=
        "# HELP troupe:rank_steps_total Steps each rank has answered.\n"
        "# TYPE troupe:rank_steps_total counter\n";
    for (size_t r = 0; r < status->rank_steps.size(); ++r)
      out += fmt::format("troupe:rank_steps_total{{rank=\"{}\"}} {}\n", r, status->rank_steps[r]);
    out +=
        "# HELP troupe:rank_step_seconds_total Seconds each rank spent in its steps (per-rank step time: the rate "
        "of this over the rate of troupe:rank_steps_total).\n"
        "# TYPE troupe:rank_step_seconds_total counter\n";
    for (size_t r = 0; r < status->rank_step_seconds.size(); ++r)
      out += fmt::format("troupe:rank_step_seconds_total{{rank=\"{}\"}} {:.6f}\n", r, status->rank_step_seconds[r]);
  }
  gauge("troupe:cluster_status_up", "1 when the cluster answered the status query for this scrape.",
        status ? 1.0 : 0.0);
  gauge("troupe:http_connections", "Open HTTP connections.", double(open_connections));
  std::lock_guard lock(mutex_);
  gauge("troupe:num_requests_in_flight", "Generation requests the HTTP server has sent to the cluster, unfinished.",
        double(in_flight_));
  out +=
      "# HELP troupe:request_success_total Finished requests by finish reason.\n"
      "# TYPE troupe:request_success_total counter\n";
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    auto it = finished_by_reason_.find(reason);
    out += fmt::format("troupe:request_success_total{{finished_reason=\"{}\"}} {}\n", reason,
                       it == finished_by_reason_.end() ? 0 : it->second);
  }
  out += fmt::format(
      "# HELP troupe:prompt_tokens_total Prompt tokens of finished requests.\n# TYPE troupe:prompt_tokens_total "
      "counter\ntroupe:prompt_tokens_total {}\n",
      prompt_tokens_);
  out += fmt::format(
      "# HELP troupe:generation_tokens_total Generated tokens of finished requests.\n# TYPE "
      "troupe:generation_tokens_total counter\ntroupe:generation_tokens_total {}\n",
      generation_tokens_);
  out +=
      "# HELP troupe:http_responses_total HTTP responses by status code.\n"
      "# TYPE troupe:http_responses_total counter\n";
  for (const auto& [code, n] : http_by_status_)
    out += fmt::format("troupe:http_responses_total{{code=\"{}\"}} {}\n", code, n);
  ttft_.render(out, "troupe:time_to_first_token_seconds", "Time to first token (from the request's arrival).");
  itl_.render(out, "troupe:inter_token_latency_seconds", "Time between consecutive tokens of a request.");
  e2e_.render(out, "troupe:e2e_request_latency_seconds", "Request latency from arrival to the last token.");
  return out;
}

}  // namespace troupe::serve
