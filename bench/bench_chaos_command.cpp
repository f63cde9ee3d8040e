// `troupe bench chaos`: a request load against a real cluster while its ranks are killed (SIGKILL)
// or frozen (SIGSTOP) at random, for a duration — the fault-tolerance yardstick
// (docs/fault-tolerance.md). It starts the cluster itself (`troupe cluster` on loopback, one node
// process per rank, so any rank can be hit alone), runs a set of distinct requests once undisturbed
// (half greedy, half seeded sampling, ignore_eos: their outputs are fixed), then keeps
// --concurrency of them in flight, cycling through the set, while killing or freezing a random rank
// every --kill-every seconds. Every finished request is compared with its undisturbed output.
// Prints progress, then: requests completed, failed, wrong and lost, the recoveries (kill to the
// first token after the cluster is ready again), and RSS, descriptors and /dev/shm entries of the
// cluster's processes over time. Exit status 1 when any request failed, was wrong or was lost.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "actors/client.hpp"
#include "bench/cluster_process.hpp"
#include "bench/throughput_experiment.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "model/model_config.hpp"

namespace troupe::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ChaosOptions {
  std::string model;
  int tp = 2, pp = 2, dp = 1;
  double duration_s = 600, kill_every_s = 20;
  int concurrency = 16;
  int distinct = 64;  // distinct requests, each run once undisturbed
  int prompt_len = 16, max_tokens = 48;
  double freeze_fraction = 0.25;  // of the hits, SIGSTOP instead of SIGKILL
  uint64_t seed = 0;              // 0: random (printed)
};

// The cluster's processes: RSS (MB), open descriptors, and the host's /dev/shm entries.
struct Resources {
  double seconds = 0, rss_mb = 0;
  int64_t fds = 0, shm = 0;
};

Resources sample_resources(const ClusterProcess& cluster, Clock::time_point start) {
  Resources r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<pid_t> pids = cluster.node_pids();
  pids.push_back(cluster.head_pid());
  for (pid_t pid : pids) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmRSS:", 0) == 0) r.rss_mb += std::stod(line.substr(6)) / 1024.0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
      ++r.fds;
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/dev/shm", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++r.shm;
  return r;
}

// The largest value (0 when none).
double largest(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// Requests in flight, the results, and the recovery clock; shared by the client's listener thread
// (callbacks), the submitting thread and the main loop.
struct Shared {
  std::mutex mutex;
  std::condition_variable cv;
  int64_t in_flight = 0, completed = 0, failed = 0, wrong = 0;
  std::vector<std::string> failures;                           // the first few errors
  std::optional<Clock::time_point> awaiting_token_since_kill;  // armed once the cluster is ready again
  std::vector<double> recovery_seconds;  // kill to the first token after the cluster is ready again
  std::vector<double> ready_seconds;     // failure to ready again, as the coordinator measured it
};

int run_bench_chaos(const ChaosOptions& o) {
  if (o.concurrency < 1 || o.distinct < 1 || o.kill_every_s <= 0 || o.duration_s <= 0)
    fail("--concurrency, --distinct, --kill-every and --duration must be positive");
  const uint64_t seed = o.seed ? o.seed : std::random_device{}();
  std::mt19937_64 random(seed);
  const ModelConfig model = ModelConfig::load(o.model);

  ClusterSpec spec;
  spec.name = "chaos";
  spec.model = o.model;
  spec.troupe_binary = std::filesystem::read_symlink("/proc/self/exe");
  spec.tp = o.tp, spec.pp = o.pp, spec.dp = o.dp;
  spec.ranks_per_node = std::vector<int>(size_t(o.tp * o.pp * o.dp), 1);
  // Enough recoveries in a period for the kill rate, heartbeats quick enough to see a freeze.
  const int per_minute = int(60.0 / o.kill_every_s) + 3;
  spec.extra = fmt::format(
      "[timeouts]\nheartbeat_interval_ms = 200\nheartbeat_timeout_ms = 2000\n\n[recovery]\nmax_restarts = {}\n"
      "max_recoveries = {}\nrestart_period_ms = 60000\n",
      per_minute, 2 * per_minute);
  std::fprintf(stderr, "[chaos] starting a %d-rank cluster (tp %d x pp %d x dp %d), one process per rank, seed %llu\n",
               o.tp * o.pp * o.dp, o.tp, o.pp, o.dp, (unsigned long long)seed);
  ClusterProcess cluster(spec);
  auto client = cluster.connect(std::chrono::minutes(5));

  std::vector<SubmitRequest> requests(size_t(o.distinct));
  for (int i = 0; i < o.distinct; ++i) {
    SubmitRequest& r = requests[size_t(i)];
    for (int t = 0; t < o.prompt_len; ++t)
      r.prompt_ids.push_back(int32_t(3 + random() % uint64_t(model.vocab_size - 3)));
    r.max_tokens = o.max_tokens;
    r.ignore_eos = true;
    if (i % 2) r.temperature = 0.8f, r.top_p = 0.95f, r.seed = uint64_t(i);  // seeded sampling
  }
  // The undisturbed outputs. (Callbacks share what they touch: the client's listener may still run
  // one while this function returns.)
  auto expected = std::make_shared<std::vector<std::vector<int32_t>>>(requests.size());
  {
    std::fprintf(stderr, "[chaos] undisturbed run of %d requests\n", o.distinct);
    auto shared = std::make_shared<Shared>();
    Shared& s = *shared;
    for (size_t i = 0; i < requests.size(); ++i)
      client->submit(requests[i], {}, [shared, expected, i](const FinishedEvent& e) {
        std::lock_guard lock(shared->mutex);
        if (e.reason == FinishReason::Length)
          (*expected)[i] = e.ids;
        else
          shared->failures.push_back(e.error);
        ++shared->completed;
        shared->cv.notify_all();
      });
    std::unique_lock lock(s.mutex);
    if (!s.cv.wait_for(lock, std::chrono::minutes(10), [&] { return s.completed == o.distinct; }))
      fail("the undisturbed run did not finish within 10 minutes");
    if (!s.failures.empty()) fail("the undisturbed run failed: {}", s.failures.front());
  }

  auto shared = std::make_shared<Shared>();
  Shared& s = *shared;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::atomic<bool> submitting{true};
  // Keeps `concurrency` requests in flight, cycling through the set, until the end.
  std::thread submitter([&] {
    size_t next = 0;
    while (submitting) {
      {
        std::unique_lock lock(s.mutex);
        s.cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return s.in_flight < o.concurrency || !submitting; });
        if (!submitting || s.in_flight >= o.concurrency) continue;
        ++s.in_flight;
      }
      const size_t index = next++ % requests.size();
      auto on_token = [shared](const TokenEvent&) {
        std::lock_guard lock(shared->mutex);
        if (shared->awaiting_token_since_kill) {
          shared->recovery_seconds.push_back(
              std::chrono::duration<double>(Clock::now() - *shared->awaiting_token_since_kill).count());
          shared->awaiting_token_since_kill.reset();
        }
      };
      auto on_finished = [shared, expected, index](const FinishedEvent& e) {
        std::lock_guard lock(shared->mutex);
        --shared->in_flight;
        if (e.reason != FinishReason::Length) {
          ++shared->failed;
          if (shared->failures.size() < 5) shared->failures.push_back(e.error);
        } else if (e.ids != (*expected)[index]) {
          ++shared->wrong;
        } else {
          ++shared->completed;
        }
        shared->cv.notify_all();
      };
      try {
        const int64_t id = client->submit(requests[index], on_token, on_finished);
        client->forget(id);  // nothing waits on it by id
      } catch (const Error& e) {
        std::lock_guard lock(s.mutex);
        --s.in_flight;
        ++s.failed;
        if (s.failures.size() < 5) s.failures.push_back(e.what());
      }
    }
  });

  std::vector<Resources> resources{sample_resources(cluster, start)};
  int kills = 0, freezes = 0;
  int64_t recoveries_seen = client->status().recoveries;
  std::optional<Clock::time_point> last_hit;
  auto next_hit = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.kill_every_s));
  auto next_sample = start + std::chrono::seconds(5);
  const int nodes = o.tp * o.pp * o.dp;
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the chaos loop's tick
    const auto now = Clock::now();
    if (now >= next_hit) {
      next_hit += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.kill_every_s));
      const std::string node = fmt::format("node{}", random() % uint64_t(nodes));
      const pid_t pid = cluster.node_pid(node);
      const bool freeze = std::uniform_real_distribution<double>(0, 1)(random) < o.freeze_fraction;
      if (pid > 0 && ::kill(pid, freeze ? SIGSTOP : SIGKILL) == 0) {
        (freeze ? freezes : kills)++;
        last_hit = now;
        std::fprintf(stderr, "[chaos] %.0f s: %s %s (pid %d)\n", std::chrono::duration<double>(now - start).count(),
                     freeze ? "froze" : "killed", node.c_str(), pid);
      }
    }
    ClusterStatus status;
    try {
      status = client->status(std::chrono::seconds(5));
    } catch (const Error&) {
      continue;  // a busy head: ask again next tick
    }
    if (status.recoveries > recoveries_seen && status.state == ClusterState::Ready) {
      recoveries_seen = status.recoveries;
      std::lock_guard lock(s.mutex);
      if (last_hit) s.awaiting_token_since_kill = last_hit;
      s.ready_seconds.push_back(status.last_recovery_seconds);
    }
    if (now >= next_sample) {
      next_sample += std::chrono::seconds(5);
      resources.push_back(sample_resources(cluster, start));
      const Resources& r = resources.back();
      std::lock_guard lock(s.mutex);
      std::fprintf(stderr,
                   "[chaos] %.0f/%.0f s: %lld completed, %lld failed, %lld wrong, %d killed, %d frozen, %lld "
                   "recoveries, state %s; RSS %.0f MB, %lld fds, %lld shm\n",
                   r.seconds, o.duration_s, (long long)s.completed, (long long)s.failed, (long long)s.wrong, kills,
                   freezes, (long long)status.recoveries, to_string(status.state), r.rss_mb, (long long)r.fds,
                   (long long)r.shm);
    }
  }
  submitting = false;
  s.cv.notify_all();
  submitter.join();
  int64_t lost = 0;
  {
    std::unique_lock lock(s.mutex);
    if (!s.cv.wait_for(lock, std::chrono::minutes(5), [&] { return s.in_flight == 0; })) lost = s.in_flight;
  }
  resources.push_back(sample_resources(cluster, start));
  const ClusterStatus final_status = client->status();

  std::lock_guard lock(s.mutex);
  std::printf(
      "troupe bench chaos: %s, tp %d x pp %d x dp %d (one process per rank), %.0f s, %d requests in flight, "
      "a rank hit every %.0f s (seed %llu)\n",
      o.model.c_str(), o.tp, o.pp, o.dp, o.duration_s, o.concurrency, o.kill_every_s, (unsigned long long)seed);
  std::printf("  requests: %lld completed exactly, %lld failed, %lld wrong, %lld lost\n", (long long)s.completed,
              (long long)s.failed, (long long)s.wrong, (long long)lost);
  std::printf("  hits: %d SIGKILL, %d SIGSTOP; recoveries %lld, state %s\n", kills, freezes,
              (long long)final_status.recoveries, to_string(final_status.state));
  std::printf("  failure to ready again (the coordinator's clock): p50 %.2f s, max %.2f s over %zu recoveries\n",
              percentiles(s.ready_seconds).p50, largest(s.ready_seconds), s.ready_seconds.size());
  std::printf("  kill to next token: p50 %.2f s, max %.2f s over %zu recoveries\n", percentiles(s.recovery_seconds).p50,
              largest(s.recovery_seconds), s.recovery_seconds.size());
  auto column = [&](auto field) {
    std::vector<double> v;
    for (const auto& r : resources) v.push_back(double(field(r)));
    return v;
  };
  const auto rss = column([](const Resources& r) { return r.rss_mb; });
  const auto fds = column([](const Resources& r) { return r.fds; });
  const auto shm = column([](const Resources& r) { return r.shm; });
  std::printf("  RSS MB (cluster processes): first %.0f, last %.0f, max %.0f\n", rss.front(), rss.back(), largest(rss));
  std::printf("  descriptors: first %.0f, last %.0f, max %.0f\n", fds.front(), fds.back(), largest(fds));
  std::printf("  /dev/shm entries: first %.0f, last %.0f, max %.0f\n", shm.front(), shm.back(), largest(shm));
  for (const auto& f : s.failures) std::printf("  failure: %s\n", f.c_str());
  return s.failed + s.wrong + lost == 0 ? 0 : 1;
}

TROUPE_BENCH(
    "chaos",
    "a request load while random ranks are killed (SIGKILL) or frozen (SIGSTOP): lost, wrong, recovery "
    "times, resources",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<ChaosOptions>();
      cmd.add_option("--model", o->model, "model folder")->required();
      cmd.add_option("--tp", o->tp, "tensor parallel size")->capture_default_str();
      cmd.add_option("--pp", o->pp, "pipeline stages")->capture_default_str();
      cmd.add_option("--duration", o->duration_s, "seconds of chaos")->capture_default_str();
      cmd.add_option("--kill-every", o->kill_every_s, "seconds between hits")->capture_default_str();
      cmd.add_option("--concurrency", o->concurrency, "requests in flight")->capture_default_str();
      cmd.add_option("--distinct", o->distinct, "distinct requests (each run once undisturbed)")->capture_default_str();
      cmd.add_option("--prompt-len", o->prompt_len, "prompt tokens")->capture_default_str();
      cmd.add_option("--max-tokens", o->max_tokens, "tokens per request")->capture_default_str();
      cmd.add_option("--freeze-fraction", o->freeze_fraction, "share of hits that SIGSTOP")->capture_default_str();
      cmd.add_option("--seed", o->seed, "random seed (0: random, printed)")->capture_default_str();
      return [o] { return run_bench_chaos(*o); };
    });

}  // namespace
}  // namespace troupe::cli
