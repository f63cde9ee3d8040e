#include "bench/throughput_experiment.hpp"

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "model/model_config.hpp"

namespace troupe {

Percentiles percentiles(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
  return {at(0.5), at(0.9), at(0.99)};
}

namespace {

using Clock = std::chrono::steady_clock;

// A config.json-only "model" with enough layers for deep pipelines (simulated stages load no weights).
std::filesystem::path simulation_model(const std::filesystem::path& out_dir) {
  auto dir = out_dir / "simulated-model";
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = {{"model_type", "llama"},    {"hidden_size", 256},
                        {"intermediate_size", 512}, {"num_hidden_layers", 48},
                        {"num_attention_heads", 8}, {"num_key_value_heads", 8},
                        {"vocab_size", 512},        {"max_position_embeddings", 4096},
                        {"bos_token_id", 1},        {"eos_token_id", 2}};
  std::ofstream(dir / "config.json") << cfg.dump(2);
  return dir;
}

struct RequestTimes {
  Clock::time_point submitted, first_token, finished;
  int64_t tokens = 0;
};

RunMetrics run_point(const ExperimentOptions& o, const ExperimentPoint& point, const std::filesystem::path& model,
                     int index) {
  RunMetrics m;
  m.point = point;
  m.micro_batches = point.micro_batches > 0 ? point.micro_batches : point.pp;
  const ModelConfig config = ModelConfig::load(model);

  ClusterSpec spec;
  spec.name = fmt::format("pp-experiment-{}", index);
  spec.model = model;
  spec.troupe_binary = o.troupe_binary;
  spec.tp = point.tp;
  spec.pp = point.pp;
  spec.ranks_per_node.assign(size_t(point.tp * point.pp), 1);  // one process per rank
  const int max_prompt = std::max(o.prompt_len, o.prompt_len_max);
  spec.extra = fmt::format(
      "[scheduler]\nmax_num_seqs = {}\nmax_num_batched_tokens = {}\nmicro_batches = {}\nkv_cache_bytes = {}\n\n"
      "[timeouts]\ncollective_timeout_ms = 60000\n\n"
      "[experiment]\nrecord_timeline = true\n{}",
      point.batch, std::max<int64_t>(512, int64_t(point.batch) * max_prompt), m.micro_batches, int64_t(256) << 20,
      o.simulate ? fmt::format("stage = \"simulated\"\nfixed_ms = {}\nper_token_ms = {}\nwait = \"{}\"\n", o.fixed_ms,
                               o.per_token_ms, o.busy_wait ? "busy" : "sleep")
                 : "");
  ClusterProcess cluster(spec);
  auto client = cluster.connect(o.timeout);

  std::mt19937 rng{uint32_t(o.seed)};
  auto uniform = [&](int lo, int hi) { return hi > lo ? std::uniform_int_distribution<int>(lo, hi)(rng) : lo; };
  std::vector<SubmitRequest> requests;
  for (int i = 0; i < point.batch; ++i) {
    SubmitRequest r;
    r.prompt_ids.push_back(config.bos_token_id.value_or(1));
    for (int t = 1; t < uniform(o.prompt_len, o.prompt_len_max); ++t)
      r.prompt_ids.push_back(std::uniform_int_distribution<int32_t>(3, int32_t(config.vocab_size) - 1)(rng));
    r.max_tokens = uniform(o.output_len, o.output_len_max);
    r.ignore_eos = true;
    requests.push_back(r);
  }
  client->generate(requests[0], {}, o.timeout);  // warm up the path end to end
  client->take_timeline(o.timeout);              // and forget its steps

  std::mutex mutex;
  std::condition_variable cv;
  std::vector<RequestTimes> times(requests.size());
  std::vector<double> token_times;
  size_t done = 0;
  std::string first_error;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < requests.size(); ++i) {
    times[i].submitted = Clock::now();
    client->submit(
        requests[i],
        [&, i](const TokenEvent&) {
          auto now = Clock::now();
          std::lock_guard lock(mutex);
          if (times[i].tokens++ == 0) times[i].first_token = now;
          token_times.push_back(std::chrono::duration<double>(now - t0).count());
        },
        [&, i](const FinishedEvent& e) {
          std::lock_guard lock(mutex);
          times[i].finished = Clock::now();
          if (e.reason == FinishReason::Error && first_error.empty()) first_error = e.error;
          ++done;
          cv.notify_all();
        });
  }
  {
    std::unique_lock lock(mutex);
    if (!cv.wait_for(lock, o.timeout, [&] { return done == requests.size(); }))
      fail("experiment run {}: requests did not finish in time", index);
    if (!first_error.empty()) fail("experiment run {}: {}", index, first_error);
  }
  Clock::time_point last = t0;
  std::vector<double> ttft, tpot;
  for (const auto& t : times) {
    last = std::max(last, t.finished);
    m.output_tokens += t.tokens;
    ttft.push_back(std::chrono::duration<double, std::milli>(t.first_token - t.submitted).count());
    if (t.tokens > 1)
      tpot.push_back(std::chrono::duration<double, std::milli>(t.finished - t.first_token).count() /
                     double(t.tokens - 1));
  }
  m.requests = int64_t(requests.size());
  m.seconds = std::chrono::duration<double>(last - t0).count();
  m.output_tokens_per_s = double(m.output_tokens) / m.seconds;
  m.requests_per_s = double(m.requests) / m.seconds;
  m.ttft_ms = percentiles(ttft);
  m.tpot_ms = percentiles(tpot);
  std::sort(token_times.begin(), token_times.end());
  const double w0 = token_times[token_times.size() / 10], w1 = token_times[token_times.size() * 9 / 10];
  const double window = std::max(1e-9, w1 - w0);
  // Least-squares slope of (time, tokens so far) over the middle 80% of the token events: robust
  // to tokens arriving in bursts (pp=1 emits a whole batch per step), where counting tokens in a
  // window would depend on where the window cuts a burst.
  {
    const size_t i0 = token_times.size() / 10, i1 = token_times.size() * 9 / 10;
    double mx = 0, my = 0;
    for (size_t i = i0; i < i1; ++i) mx += token_times[i], my += double(i);
    mx /= double(i1 - i0), my /= double(i1 - i0);
    double sxy = 0, sxx = 0;
    for (size_t i = i0; i < i1; ++i)
      sxy += (token_times[i] - mx) * (double(i) - my), sxx += (token_times[i] - mx) * (token_times[i] - mx);
    m.steady_tokens_per_s = sxx > 0 ? sxy / sxx : 0.0;
  }

  m.timeline = client->take_timeline(o.timeout).steps;
  // Per-stage busy time over the steady window, from tp rank 0 of each stage.
  const double base = std::chrono::duration<double>(t0.time_since_epoch()).count();
  m.stage_busy.assign(size_t(point.pp), 0.0);
  for (const auto& s : m.timeline) {
    if (s.rank % point.tp != 0) continue;
    const double begin = s.start_time - base + s.recv_seconds, end = begin + s.compute_seconds;
    const double overlap = std::max(0.0, std::min(end, w1) - std::max(begin, w0));
    m.stage_busy[size_t(s.rank / point.tp)] += overlap / window;
  }
  double mean_busy = 0;
  for (double b : m.stage_busy) mean_busy += b / double(point.pp);
  m.bubble_fraction = 1.0 - mean_busy;
  m.ideal_busy = std::min(1.0, double(m.micro_batches) / double(point.pp));
  m.gpipe_ideal = double(m.micro_batches) / double(m.micro_batches + point.pp - 1);
  m.measured_over_ideal = mean_busy / m.ideal_busy;
  return m;
}

std::string point_name(const RunMetrics& m) {
  return fmt::format("tp{}-pp{}-mb{}-batch{}", m.point.tp, m.point.pp, m.micro_batches, m.point.batch);
}

}  // namespace

std::vector<RunMetrics> run_throughput_experiment(const ExperimentOptions& o,
                                                  const std::function<void(const std::string&)>& progress) {
  std::filesystem::create_directories(o.out_dir);
  // Absolute: the generated node configs live elsewhere and resolve relative paths against themselves.
  const std::filesystem::path model =
      std::filesystem::absolute(o.simulate && o.model.empty() ? simulation_model(o.out_dir) : o.model);
  std::vector<RunMetrics> runs;
  for (size_t i = 0; i < o.points.size(); ++i) {
    const auto& p = o.points[i];
    if (progress)
      progress(fmt::format("[run {}/{}] tp={} pp={} micro_batches={} batch={} ({})", i + 1, o.points.size(), p.tp, p.pp,
                           p.micro_batches > 0 ? p.micro_batches : p.pp, p.batch,
                           o.simulate ? "simulated stages" : "real model"));
    RunMetrics m = run_point(o, p, model, int(i));
    m.trace_file = (o.out_dir / (point_name(m) + ".trace.json")).string();
    write_chrome_trace(m, m.trace_file);
    if (progress)
      progress(
          fmt::format("        {:.1f} tokens/s steady ({:.1f} whole run), bubble {:.0f}%, measured/ideal {:.2f}, TTFT "
                      "p50 {:.0f} ms, TPOT p50 {:.1f} ms",
                      m.steady_tokens_per_s, m.output_tokens_per_s, 100 * m.bubble_fraction, m.measured_over_ideal,
                      m.ttft_ms.p50, m.tpot_ms.p50));
    runs.push_back(std::move(m));
  }
  for (auto& m : runs)
    for (const auto& base : runs)
      if (base.point.pp == 1 && base.point.tp == m.point.tp && base.point.batch == m.point.batch &&
          base.steady_tokens_per_s > 0)
        m.speedup_vs_pp1 = m.steady_tokens_per_s / base.steady_tokens_per_s;
  write_metrics_csv(runs, o.out_dir / "pp_throughput.csv");
  return runs;
}

void write_metrics_csv(const std::vector<RunMetrics>& runs, const std::filesystem::path& path) {
  std::ofstream out(path);
  out << "tp,pp,micro_batches,batch,seconds,output_tokens,output_tokens_per_s,steady_tokens_per_s,requests_per_s,"
         "ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,tpot_p50_ms,tpot_p90_ms,tpot_p99_ms,bubble_fraction,ideal_busy,"
         "gpipe_ideal,measured_over_ideal,speedup_vs_pp1,stage_busy\n";
  for (const auto& m : runs)
    out << fmt::format(
        "{},{},{},{},{:.3f},{},{:.2f},{:.2f},{:.3f},{:.1f},{:.1f},{:.1f},{:.2f},{:.2f},{:.2f},{:.3f},{:.3f},{:.3f},{:."
        "3f},{:.3f},{:.3f}\n",
        m.point.tp, m.point.pp, m.micro_batches, m.point.batch, m.seconds, m.output_tokens, m.output_tokens_per_s,
        m.steady_tokens_per_s, m.requests_per_s, m.ttft_ms.p50, m.ttft_ms.p90, m.ttft_ms.p99, m.tpot_ms.p50,
        m.tpot_ms.p90, m.tpot_ms.p99, m.bubble_fraction, m.ideal_busy, m.gpipe_ideal, m.measured_over_ideal,
        m.speedup_vs_pp1, fmt::join(m.stage_busy, ";"));
}

void write_chrome_trace(const RunMetrics& run, const std::filesystem::path& path) {
  nlohmann::json events = nlohmann::json::array();
  double t0 = 1e300;
  for (const auto& s : run.timeline) t0 = std::min(t0, s.start_time);
  std::set<int> stages;
  for (const auto& s : run.timeline) {
    const int stage = s.rank / run.point.tp, tp_rank = s.rank % run.point.tp;
    stages.insert(stage);
    const double begin = s.start_time + s.recv_seconds;
    events.push_back(
        {{"name", fmt::format("mb {}", s.micro_batch)},
         {"cat", "compute"},
         {"ph", "X"},
         {"ts", (begin - t0) * 1e6},
         {"dur", s.compute_seconds * 1e6},
         {"pid", stage},
         {"tid", tp_rank},
         {"args", {{"micro_batch", s.micro_batch}, {"rank", s.rank}, {"collective_ms", s.collective_seconds * 1e3}}}});
    if (s.recv_seconds > 0)
      events.push_back({{"name", "wait for activations"},
                        {"cat", "wait"},
                        {"ph", "X"},
                        {"ts", (s.start_time - t0) * 1e6},
                        {"dur", s.recv_seconds * 1e6},
                        {"pid", stage},
                        {"tid", tp_rank}});
  }
  for (int stage : stages)
    events.push_back(
        {{"name", "process_name"}, {"ph", "M"}, {"pid", stage}, {"args", {{"name", fmt::format("stage {}", stage)}}}});
  std::ofstream(path) << nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump();
}

std::string format_metrics_table(const std::vector<RunMetrics>& runs) {
  std::string t =
      "  tp  pp  mb batch | tokens/s steady (run) | speedup vs pp1 | bubble | measured/ideal | TTFT p50/p90/p99 ms | "
      "TPOT p50/p90/p99 ms\n";
  for (const auto& m : runs)
    t += fmt::format(
        "  {:2} {:3} {:3} {:5} | {:9.1f} ({:8.1f}) | {:14.2f} | {:5.0f}% | {:14.2f} | {:6.0f} {:6.0f} {:6.0f} | "
        "{:6.1f} {:6.1f} {:6.1f}\n",
        m.point.tp, m.point.pp, m.micro_batches, m.point.batch, m.steady_tokens_per_s, m.output_tokens_per_s,
        m.speedup_vs_pp1, 100 * m.bubble_fraction, m.measured_over_ideal, m.ttft_ms.p50, m.ttft_ms.p90, m.ttft_ms.p99,
        m.tpot_ms.p50, m.tpot_ms.p90, m.tpot_ms.p99);
  return t;
}

}  // namespace troupe
