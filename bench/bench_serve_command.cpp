// `troupe bench serve`: the HTTP front door's cost, in the manner of vLLM's benchmark_serving.
// One in-process cluster; the same load — N concurrent clients (default 64), each sending streamed
// requests back to back — goes through the actor Client API and through `troupe serve`'s HTTP
// server (OpenAI /v1/completions, stream: true, over loopback TCP) in the same run, alternating
// rounds. Prints output-token throughput for both, their ratio (target >= 0.95), and time to
// first token and inter-token latency p50/p99 for both.
#include <algorithm>
#include <atomic>
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <functional>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "actors/client.hpp"
#include "actors/in_process_cluster.hpp"
#include "bench/throughput_experiment.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "model/model_config.hpp"
#include "serve/local_cluster.hpp"
#include "serve/openai_server.hpp"

namespace troupe::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

struct BenchServeOptions {
  std::string model;
  int tp = 1, pp = 1;
  int clients = 64;
  int requests = 256;  // per round and mode
  int prompt_len = 16;
  int max_tokens = 64;
  int rounds = 2;
  int io_threads = 1;
  double simulate_ms = 0;  // > 0: simulated compute (a step costs this many ms; no CPU)
  std::string only;        // "actor" or "http": run that load alone (for profiling one path)
  bool json = false;
};

// What one request saw: when it started and when each token arrived.
struct Trace {
  Clock::time_point start;
  std::vector<Clock::time_point> tokens;
};

struct RunResult {
  double seconds = 0;
  int64_t tokens = 0;
  std::vector<double> ttft, itl;  // seconds
  int errors = 0;
  double cpu_seconds = 0;  // the whole process's (cluster, server, clients): the cores this load used
};

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Runs `round` and adds the process CPU time it took.
template <class Round>
RunResult measured(Round round) {
  const double cpu0 = process_cpu_seconds();
  RunResult r = round();
  r.cpu_seconds = process_cpu_seconds() - cpu0;
  return r;
}

// The result of a load that started at `t0` and has just ended.
RunResult result_of(Clock::time_point t0, int errors, const std::vector<Trace>& traces) {
  RunResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.errors = errors;
  for (const auto& t : traces) {
    if (t.tokens.empty()) continue;
    r.tokens += int64_t(t.tokens.size());
    r.ttft.push_back(std::chrono::duration<double>(t.tokens[0] - t.start).count());
    for (size_t i = 1; i < t.tokens.size(); ++i)
      r.itl.push_back(std::chrono::duration<double>(t.tokens[i] - t.tokens[i - 1]).count());
  }
  return r;
}

std::vector<std::vector<int32_t>> make_prompts(int n, int len, int64_t vocab) {
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(n));
  uint64_t x = 88172645463325252ull;  // xorshift: the same prompts on every machine
  for (auto& p : out)
    for (int i = 0; i < len; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      p.push_back(int32_t(3 + x % uint64_t(vocab - 3)));
    }
  return out;
}

// Runs `requests` requests with `clients` threads, each calling `one(index, trace)` back to back.
template <class One>
RunResult run_load(int clients, int requests, One one) {
  std::atomic<int> next{0};
  std::vector<Trace> traces(static_cast<size_t>(requests));
  std::atomic<int> errors{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      for (int i; (i = next++) < requests;)
        if (!one(i, traces[size_t(i)])) ++errors;
    });
  for (auto& t : threads) t.join();
  return result_of(t0, errors, traces);
}

// The HTTP load: every client a kept-alive connection sending streamed /v1/completions requests
// back to back, all driven by one thread (as benchmark_serving's asyncio loop drives its clients).
// Each complete "data: {...}" event with a null finish_reason carries one token: its arrival time
// is recorded.
class HttpLoad {
 public:
  HttpLoad(int port, int clients, const std::vector<std::string>& bodies, int requests)
      : bodies_(bodies), requests_(requests), traces_(static_cast<size_t>(requests)) {
    const net::ip::tcp::endpoint server(net::ip::make_address("127.0.0.1"), uint16_t(port));
    for (int c = 0; c < clients; ++c) {
      auto conn = std::make_unique<Conn>(ioc_);
      conn->socket.connect(server);
      conn->socket.set_option(net::ip::tcp::no_delay(true));
      conns_.push_back(std::move(conn));
    }
  }

  RunResult run() {
    const auto t0 = Clock::now();
    for (auto& c : conns_) next(*c);
    ioc_.run();
    return result_of(t0, errors_, traces_);
  }

 private:
  struct Conn {
    explicit Conn(net::io_context& ioc) : socket(ioc) {}
    net::ip::tcp::socket socket;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    std::optional<http::response_parser<http::empty_body>> parser;
    std::string pending;
    Trace* trace = nullptr;
    bool done = false;
    std::function<size_t(uint64_t, beast::string_view, beast::error_code&)> on_chunk;
  };

  void next(Conn& c) {
    const int i = next_++;
    if (i >= requests_) return;
    c.request = {http::verb::post, "/v1/completions", 11};
    c.request.set(http::field::host, "127.0.0.1");
    c.request.set(http::field::content_type, "application/json");
    c.request.keep_alive(true);
    c.request.body() = bodies_[size_t(i)];
    c.request.prepare_payload();
    c.trace = &traces_[size_t(i)];
    c.done = false;
    c.pending.clear();
    c.parser.emplace();
    c.parser->body_limit(std::numeric_limits<uint64_t>::max());
    c.on_chunk = [&c](uint64_t, beast::string_view piece, beast::error_code&) -> size_t {
      c.pending.append(piece.data(), piece.size());
      const auto now = Clock::now();
      for (size_t at; (at = c.pending.find("\n\n")) != std::string::npos; c.pending.erase(0, at + 2)) {
        std::string_view event(c.pending.data(), at);
        if (event == "data: [DONE]")
          c.done = true;
        else if (event.find("\"finish_reason\":null") != std::string_view::npos)
          c.trace->tokens.push_back(now);
      }
      return piece.size();
    };
    c.parser->on_chunk_body(c.on_chunk);  // the parser keeps a reference: the callback lives in c
    c.trace->start = Clock::now();
    http::async_write(c.socket, c.request, [this, &c](beast::error_code ec, size_t) {
      if (ec) return fail(c);
      http::async_read_header(c.socket, c.buffer, *c.parser, [this, &c](beast::error_code ec, size_t) {
        if (ec || c.parser->get().result_int() != 200) return fail(c);
        read_body(c);
      });
    });
  }

  void read_body(Conn& c) {
    if (c.parser->is_done()) {
      if (!c.done) ++errors_;
      return next(c);
    }
    http::async_read_some(c.socket, c.buffer, *c.parser, [this, &c](beast::error_code ec, size_t) {
      if (ec) return fail(c);
      read_body(c);
    });
  }

  void fail(Conn& c) {
    ++errors_;
    beast::error_code ignored;
    c.socket.close(ignored);  // this client stops; the others go on
  }

  net::io_context ioc_;
  const std::vector<std::string>& bodies_;
  int requests_;
  int next_ = 0;
  int errors_ = 0;
  std::vector<Trace> traces_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

void print_row(const char* name, const RunResult& r) {
  std::printf(
      "%-6s %8.1f tok/s  %6lld tokens in %6.2f s  TTFT p50 %7.2f ms p99 %7.2f ms  ITL p50 %6.2f ms p99 %7.2f ms  "
      "CPU %5.1f us/token%s\n",
      name, double(r.tokens) / r.seconds, (long long)r.tokens, r.seconds, 1e3 * percentiles(r.ttft).p50,
      1e3 * percentiles(r.ttft).p99, 1e3 * percentiles(r.itl).p50, 1e3 * percentiles(r.itl).p99,
      r.tokens ? 1e6 * r.cpu_seconds / double(r.tokens) : 0.0,
      r.errors ? fmt::format("  ({} errors)", r.errors).c_str() : "");
}

void merge(RunResult& into, const RunResult& r) {
  into.seconds += r.seconds;
  into.tokens += r.tokens;
  into.errors += r.errors;
  into.cpu_seconds += r.cpu_seconds;
  into.ttft.insert(into.ttft.end(), r.ttft.begin(), r.ttft.end());
  into.itl.insert(into.itl.end(), r.itl.begin(), r.itl.end());
}

nlohmann::json summary(const RunResult& r) {
  return {{"tokens_per_s", double(r.tokens) / r.seconds},
          {"tokens", r.tokens},
          {"seconds", r.seconds},
          {"errors", r.errors},
          {"cpu_us_per_token", r.tokens ? 1e6 * r.cpu_seconds / double(r.tokens) : 0.0},
          {"ttft_p50_ms", 1e3 * percentiles(r.ttft).p50},
          {"ttft_p99_ms", 1e3 * percentiles(r.ttft).p99},
          {"itl_p50_ms", 1e3 * percentiles(r.itl).p50},
          {"itl_p99_ms", 1e3 * percentiles(r.itl).p99}};
}

int run_bench_serve(const BenchServeOptions& o) {
  if (o.clients < 1 || o.requests < 1 || o.max_tokens < 1 || o.prompt_len < 1) fail("bench serve: sizes must be >= 1");
  ModelConfig model = ModelConfig::load(o.model);
  if (o.prompt_len + o.max_tokens > model.max_position_embeddings)
    fail("bench serve: --prompt-len + --max-tokens ({}) exceeds the model's {} positions", o.prompt_len + o.max_tokens,
         model.max_position_embeddings);
  ClusterConfig config = serve::local_cluster_config(
      {o.model, o.tp, o.pp, 1, o.clients, std::max<int64_t>(512, 2 * int64_t(o.clients)), 64ll << 20});
  if (o.simulate_ms > 0) {  // the simulated stage: a step costs simulate_ms and no CPU
    config.stage = "simulated";
    config.stage_options = {{"fixed_ms", fmt::format("{}", o.simulate_ms)}, {"per_token_ms", "0"}};
  }
  InProcessCluster cluster(config);
  Client client(cluster.system(), cluster.coordinator());
  serve::OpenAIServerOptions server_options;
  server_options.model_dir = config.model_path;
  server_options.io_threads = o.io_threads;
  serve::OpenAIServer server(client, server_options);
  const int port = server.start("127.0.0.1", 0);
  server.set_status(client.wait_until_ready(std::chrono::minutes(5)));

  auto prompts = make_prompts(o.requests, o.prompt_len, model.vocab_size);
  std::vector<std::string> bodies;
  for (int i = 0; i < o.requests; ++i)
    bodies.push_back(nlohmann::json{
        {"prompt", prompts[size_t(i)]},
        {"max_tokens", o.max_tokens},
        {"temperature", 0},
        {"ignore_eos", true},
        {"stream", true}}.dump());
  auto actor_round = [&](int requests) {
    return run_load(o.clients, requests, [&](int i, Trace& trace) {
      trace.start = Clock::now();
      SubmitRequest req;
      req.prompt_ids = prompts[size_t(i)];
      req.max_tokens = o.max_tokens;
      req.ignore_eos = true;
      auto e = client.generate(req, [&trace](const TokenEvent&) { trace.tokens.push_back(Clock::now()); });
      return e.reason != FinishReason::Error;
    });
  };
  auto http_round = [&](int requests) { return HttpLoad(port, o.clients, bodies, requests).run(); };
  if (o.simulate_ms > 0) std::fprintf(stderr, "bench serve: simulated compute, %.2f ms per step\n", o.simulate_ms);
  std::fprintf(stderr,
               "bench serve: %s, tp=%d pp=%d, %d clients, %d requests x %d rounds per mode, prompt %d, "
               "%d output tokens each; HTTP on 127.0.0.1:%d with %d I/O threads\n",
               o.model.c_str(), o.tp, o.pp, o.clients, o.requests, o.rounds, o.prompt_len, o.max_tokens, port,
               o.io_threads);
  const bool run_actor = o.only != "http", run_http = o.only != "actor";
  if (run_actor) actor_round(std::min(o.requests, o.clients));  // warm-up
  if (run_http) http_round(std::min(o.requests, o.clients));
  RunResult actor, web;
  for (int round = 0; round < o.rounds; ++round) {
    RunResult a = run_actor ? measured([&] { return actor_round(o.requests); }) : RunResult{};
    RunResult h = run_http ? measured([&] { return http_round(o.requests); }) : RunResult{};
    if (!o.json) {
      std::printf("round %d:\n", round + 1);
      print_row("actor", a);
      print_row("http", h);
    }
    merge(actor, a);
    merge(web, h);
  }
  const double ratio = (double(web.tokens) / web.seconds) / (double(actor.tokens) / actor.seconds);
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"actor", summary(actor)},
                                       {"http", summary(web)},
                                       {"ratio", ratio},
                                       {"clients", o.clients},
                                       {"requests", o.requests},
                                       {"rounds", o.rounds},
                                       {"max_tokens", o.max_tokens},
                                       {"prompt_len", o.prompt_len}}
                            .dump()
                            .c_str());
  } else {
    std::printf("all rounds:\n");
    print_row("actor", actor);
    print_row("http", web);
    std::printf("HTTP / actor throughput: %.3f (target >= 0.95)\n", ratio);
  }
  server.stop();
  return actor.errors + web.errors == 0 ? 0 : 1;
}

TROUPE_BENCH("serve", "OpenAI HTTP server vs the actor Client: throughput ratio, TTFT and inter-token p50/p99",
             [](CLI::App& cmd) -> std::function<int()> {
               auto o = std::make_shared<BenchServeOptions>();
               cmd.add_option("--model", o->model, "model folder")->required();
               cmd.add_option("--tp", o->tp, "tensor-parallel ranks")->capture_default_str();
               cmd.add_option("--pp", o->pp, "pipeline stages")->capture_default_str();
               cmd.add_option("--clients", o->clients, "concurrent streaming clients")->capture_default_str();
               cmd.add_option("--requests", o->requests, "requests per round and mode")->capture_default_str();
               cmd.add_option("--prompt-len", o->prompt_len, "prompt tokens per request")->capture_default_str();
               cmd.add_option("--max-tokens", o->max_tokens, "output tokens per request")->capture_default_str();
               cmd.add_option("--rounds", o->rounds, "alternating actor/HTTP rounds")->capture_default_str();
               cmd.add_option("--io-threads", o->io_threads, "HTTP server I/O threads")->capture_default_str();
               cmd.add_option("--simulate-ms", o->simulate_ms,
                              "simulate the model: each step costs this many ms and no CPU (isolates the "
                              "front door's cost from compute competing for the same cores)");
               cmd.add_option("--only", o->only, "run one load alone, to profile its path")
                   ->check(CLI::IsMember({"actor", "http"}));
               cmd.add_flag("--json", o->json, "print one JSON object");
               return [o] { return run_bench_serve(*o); };
             });

}  // namespace
}  // namespace troupe::cli
