// End to end through real processes: `troupe cluster` starts a head and node processes on
// loopback; requests go through the client API (CAF over TCP), activations between pipeline
// stages over UCX, tp collectives over shared memory.
#include <doctest/doctest.h>

#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "actors/in_process_cluster.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"
#include "tests/child_process.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/deadlines.hpp"
#include "tests/reference_cases.hpp"
#include "tests/request_load.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

ClusterSpec test_spec(const std::filesystem::path& model) {
  ClusterSpec spec;
  spec.model = model;
  spec.troupe_binary = test::binary_dir() / "troupe";
  return spec;
}

SubmitRequest request_for(const std::vector<int32_t>& prompt, int64_t max_tokens) {
  SubmitRequest r;
  r.prompt_ids = prompt;
  r.max_tokens = max_tokens;
  return r;
}

// Submits all requests at once and waits for every FinishedEvent (failing with the cluster's log).
std::vector<FinishedEvent> submit_all(Client& client, const std::vector<SubmitRequest>& requests,
                                      const ClusterProcess& cluster) {
  return test::RequestLoad(client, requests).wait(300s, cluster);
}

void check_references(const std::string& model, int ep = 1, std::vector<int> ranks_per_node = {1, 1, 1, 1}) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  ClusterSpec spec = test_spec(dir);
  spec.tp = 2;
  spec.pp = 2;
  spec.ep = ep;
  spec.ranks_per_node = ranks_per_node;
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  auto cases = test::load_reference_cases(dir);
  std::vector<SubmitRequest> requests;
  for (const auto& c : cases) requests.push_back(request_for(c.prompt_ids, int64_t(c.greedy_ids.size())));
  auto expect = [&](const FinishedEvent& e, size_t i) {
    INFO(model, " case ", i, " ", e.error);
    auto ids = e.ids;
    ids.resize(std::min(ids.size(), cases[i].compare_first));
    CHECK(ids ==
          std::vector<int32_t>(cases[i].greedy_ids.begin(), cases[i].greedy_ids.begin() + cases[i].compare_first));
  };
  for (size_t i = 0; i < requests.size(); ++i)
    expect(client->generate(requests[i], {}, test::scaled(120s)), i);  // one by one
  auto together = submit_all(*client, requests, cluster);              // all at once
  for (size_t i = 0; i < requests.size(); ++i) expect(together[i], i);
  CHECK(cluster.node_pids().size() == ranks_per_node.size());
}

}  // namespace

TEST_CASE("tp=2 x pp=2 on 4 processes reproduces aidreams260K, one by one and all at once") {
  check_references("aidreams260K");
}
TEST_CASE("tp=2 x pp=2 on 4 processes reproduces gqa260K, one by one and all at once") { check_references("gqa260K"); }
TEST_CASE("ep=2 x pp=2 (experts over each tp pair) on 2 processes reproduces mixtral-tiny") {
  check_references("mixtral-tiny", 2, {2, 2});
}

TEST_CASE("64 concurrent mixed requests under a KV budget that forces preemption equal each request alone") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  std::mt19937 rng{11};
  std::vector<SubmitRequest> requests;
  for (int i = 0; i < 64; ++i) {
    std::vector<int32_t> prompt = {1};
    int len = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int t = 0; t < len; ++t) prompt.push_back(std::uniform_int_distribution<int32_t>(3, 511)(rng));
    auto r = request_for(prompt, std::uniform_int_distribution<int>(1, 48)(rng));
    r.ignore_eos = i % 3 == 0;
    requests.push_back(r);
  }
  ClusterSpec spec = test_spec(dir);
  spec.tp = 1;
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  spec.extra = "[scheduler]\nnum_kv_blocks = 12\nblock_size = 16\nmax_num_seqs = 32\nmax_num_batched_tokens = 256\n";
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  auto results = submit_all(*client, requests, cluster);
  CHECK(client->status().preemptions > 0);

  LocalModelExecutor alone(dir);
  BatchGenerator generator(alone);
  for (size_t i = 0; i < requests.size(); ++i) {
    GenerationRequest g{requests[i].prompt_ids, requests[i].max_tokens, {}, {}, requests[i].ignore_eos};
    auto single = generator.run({g})[0];
    INFO("request ", i, " ", results[i].error);
    CHECK(results[i].ids == single.ids);
    CHECK(results[i].reason == single.finish_reason);
  }
}

TEST_CASE("bad requests get error events and the cluster keeps serving") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = test_spec(dir);
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  auto error_of = [&](SubmitRequest r) {
    auto e = client->generate(r, {}, 30s);
    CHECK(e.reason == FinishReason::Error);
    return e.error;
  };
  CHECK(error_of(request_for(std::vector<int32_t>(200, 5), 4))
            .find("prompt of 200 tokens does not fit the context of 128 tokens") == 0);
  CHECK(error_of(request_for({1, 2}, 0)) == "max_tokens (0) must be at least 1");
  CHECK(error_of(request_for({1, 2}, -5)) == "max_tokens (-5) must be at least 1");
  CHECK(error_of(request_for({1, 9999}, 4)) == "prompt token id 9999 is out of range for vocab_size 512");
  auto hot = request_for({1}, 4);
  hot.temperature = -1;
  CHECK(error_of(hot) == "temperature -1 must be >= 0");
  CHECK(error_of(SubmitRequest{}) == "give a prompt (text) or prompt_ids");
  auto cancelled = client->cancel(424242, 10s);
  CHECK(cancelled.reason == FinishReason::Error);
  CHECK(cancelled.error == "unknown request id 424242");
  auto ok = client->generate(request_for({1}, 5), {}, 30s);
  CHECK(ok.reason == FinishReason::Length);
  CHECK(ok.ids.size() == 5);
  // `troupe submit` prints what `troupe generate` prints (same JSON shape), and streams text.
  auto submitted = test::run_troupe("submit --config " + cluster.config_file().string() +
                                    " --prompt 'The machine' --max-tokens 12 --json");
  auto generated =
      test::run_troupe("generate --model " + dir.string() + " --prompt 'The machine' --max-tokens 12 --json");
  REQUIRE(submitted.exit_code == 0);
  CHECK(submitted.out == generated.out);
  auto streamed =
      test::run_troupe("submit --config " + cluster.config_file().string() + " --prompt 'The machine' --max-tokens 12");
  CHECK(streamed.out == "The machine" + nlohmann::json::parse(generated.out)["text"].get<std::string>() + "\n");
}

TEST_CASE("text prompts, streaming, stop strings and cancel through the client") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = test_spec(dir);
  spec.tp = 2;
  spec.ranks_per_node = {2};
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  SubmitRequest r;
  r.prompt = "I dream of a silver city";
  r.max_tokens = 30;
  std::string streamed;
  int tokens = 0;
  auto e = client->generate(
      r, [&](const TokenEvent& t) { streamed += t.text, ++tokens; }, 60s);
  CHECK(e.reason == FinishReason::Length);
  CHECK(tokens == 30);
  CHECK(streamed == e.text);
  CHECK(e.text.rfind("kernels, a gentle hum", 0) == 0);
  r.stop = {"gentle"};
  auto stopped = client->generate(r, {}, 60s);
  CHECK(stopped.reason == FinishReason::Stop);
  CHECK(stopped.text == "kernels, a ");
  // Cancel a long request while it runs: it finishes with "abort" and its blocks are freed.
  SubmitRequest long_one = request_for({1}, 120);
  long_one.ignore_eos = true;
  std::mutex m;
  std::condition_variable cv;
  int seen = 0;
  int64_t id = client->submit(long_one,
                              [&](const TokenEvent&) {
                                std::lock_guard l(m);
                                ++seen;
                                cv.notify_all();
                              },
                              {});
  {
    std::unique_lock lock(m);
    cv.wait_for(lock, 30s, [&] { return seen >= 3; });
  }
  auto aborted = client->cancel(id, 30s);
  CHECK(aborted.reason == FinishReason::Abort);
  CHECK(aborted.ids.size() < 120);
}

TEST_CASE("a node with the wrong secret is refused") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = test_spec(dir);
  spec.ranks_per_node = {1};
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  // A second "node0" presenting another secret (its own copy of the config).
  auto other = cluster_toml(
      [&] {
        auto s = spec;
        s.secret = "wrong";
        return s;
      }(),
      cluster.port());
  auto path = cluster.config_file().parent_path() / "wrong.toml";
  std::ofstream(path) << other;
  // The refused node must end by itself, promptly (its rank actors stopped, no CAF teardown hang).
  auto node = test::run_troupe("node --config " + test::shell_quoted(path.string()) + " --node node0", 60s);
  INFO(node.err);
  CHECK(node.exit_code == 1);
  CHECK(node.seconds < 5);  // the acceptance bound for a refused node (start, join, refusal, exit)
  CHECK(node.err.find("refused: node 'node0' presented the wrong secret for cluster 'test'") != std::string::npos);
  CHECK(client->status().state == ClusterState::Ready);
}

TEST_CASE(
    "with [recovery] enabled = false, killing a rank process mid-request: noticed within the heartbeat timeout, "
    "requests fail, cluster degraded") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  ClusterSpec spec = test_spec(dir);
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  spec.extra =
      "[timeouts]\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1000\ncollective_timeout_ms = 3000\n"
      "[recovery]\nenabled = false\n";
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  std::mutex m;
  std::condition_variable cv;
  int tokens = 0;
  std::vector<FinishedEvent> finished;
  const int n = 6;
  for (int i = 0; i < n; ++i) {
    auto r = request_for({1, int32_t(10 + i)}, 400);
    r.ignore_eos = true;
    client->submit(
        r,
        [&](const TokenEvent&) {
          std::lock_guard l(m);
          ++tokens;
          cv.notify_all();
        },
        [&](const FinishedEvent& e) {
          std::lock_guard l(m);
          finished.push_back(e);
          cv.notify_all();
        });
  }
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 60s, [&] { return tokens >= n * 2; }));
  }
  auto pids = cluster.node_pids();
  REQUIRE(pids.size() == 2);
  const auto killed_at = std::chrono::steady_clock::now();
  kill(pids[1], SIGKILL);
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 30s, [&] { return int(finished.size()) == n; }));
  }
  const auto noticed = std::chrono::steady_clock::now() - killed_at;
  CHECK(noticed < 5s);
  for (const auto& e : finished) {
    CHECK(e.reason == FinishReason::Error);
    CHECK(e.error.find("node 'node1' (ranks 1) is down") != std::string::npos);
  }
  auto status = client->status();
  CHECK(status.state == ClusterState::Degraded);
  auto late = client->generate(request_for({1}, 3), {}, 10s);
  CHECK(late.reason == FinishReason::Error);
  CHECK(late.error.find("cluster is degraded") == 0);
}

TEST_CASE("an in-process cluster serves the same client calls (tp=2 x pp=2, one process)") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = test_spec(dir);
  spec.tp = 2;
  spec.pp = 2;
  spec.ranks_per_node = {4};
  ClusterConfig config = ClusterConfig::parse(cluster_toml(spec, 0), "in-process.toml");
  InProcessCluster cluster(config);
  {
    Client client(cluster.system(), cluster.coordinator());
    client.wait_until_ready(60s);
    auto cases = test::load_reference_cases(dir);
    for (const auto& c : cases) {
      auto e = client.generate(request_for(c.prompt_ids, int64_t(c.greedy_ids.size())), {}, 60s);
      CHECK(e.ids == c.greedy_ids);
    }
  }
}
