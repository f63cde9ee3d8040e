// `troupe serve` over real HTTP on loopback, driven with curl: reference outputs through the
// OpenAI completions API (token ids, streaming and not), text prompts against `troupe generate`,
// chat completions with a chat template, errors and limits, and cancellation on disconnect.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "comm/tcp_rendezvous.hpp"
#include "tests/child_process.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/reference_cases.hpp"
#include "tests/serve/serve_process.hpp"
#include "tests/test_paths.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using troupe::test::HttpReply;
using troupe::test::ServeProcess;

namespace {

std::string arg(const std::filesystem::path& p) { return troupe::test::shell_quoted(p.string()); }

// Token ids of a streamed completion (vLLM's return_token_ids), and the finish reason it reports.
struct Streamed {
  std::vector<int32_t> ids;
  std::string text, finish_reason;
  bool done = false;
  json usage;
};

Streamed read_stream(const HttpReply& reply) {
  Streamed s;
  for (const auto& e : troupe::test::sse_events(reply.body)) {
    if (e == "[DONE]") {
      s.done = true;
      continue;
    }
    json chunk = json::parse(e);
    REQUIRE_MESSAGE(!chunk.contains("error"), e);
    if (chunk.contains("usage") && !chunk["usage"].is_null()) s.usage = chunk["usage"];
    for (const auto& c : chunk["choices"]) {
      if (c.contains("token_ids"))
        for (int id : c["token_ids"]) s.ids.push_back(id);
      if (c.contains("text")) s.text += c["text"].get<std::string>();
      if (c.contains("delta") && c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
      if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
    }
  }
  return s;
}

std::vector<std::string> reference_models() { return {"aidreams260K", "gqa260K", "mixtral-tiny", "qwen2moe-tiny"}; }

// The chat template of a shared tokenizer, as a Jinja file (what --chat-template takes).
std::filesystem::path template_file(const std::filesystem::path& tokenizer_dir) {
  json config = json::parse(std::ifstream(tokenizer_dir / "tokenizer_config.json"));
  auto path = std::filesystem::temp_directory_path() /
              ("troupe_serve_test_" + std::to_string(::getpid()) + "_" + tokenizer_dir.filename().string() + ".jinja");
  std::ofstream(path) << config["chat_template"].get<std::string>();
  return path;
}

}  // namespace

TEST_CASE("every reference case comes back through /v1/completions as token ids (streaming and not)") {
  TROUPE_REQUIRE_SHARED(models, "models");
  for (const auto& name : reference_models()) {
    const auto dir = models / name;
    if (!std::filesystem::exists(dir / "reference.json")) continue;
    CAPTURE(name);
    ServeProcess server("--model " + arg(dir));
    auto cases = troupe::test::load_reference_cases(dir);
    REQUIRE(!cases.empty());
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      CAPTURE(i);
      json body = {{"model", name},
                   {"prompt", c.prompt_ids},
                   {"max_tokens", c.greedy_ids.size()},
                   {"temperature", 0},
                   {"return_token_ids", true}};
      HttpReply whole = server.post("/v1/completions", body);
      REQUIRE_MESSAGE(whole.status == 200, whole.body);
      json out = whole.json();
      std::vector<int32_t> ids = out["choices"][0]["token_ids"];
      const size_t n = std::min(c.compare_first, c.greedy_ids.size());
      REQUIRE(ids.size() >= n);
      CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + n) ==
            std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + n));
      CHECK(out["usage"]["prompt_tokens"] == c.prompt_ids.size());
      CHECK(out["usage"]["completion_tokens"] == ids.size());
      CHECK(out["object"] == "text_completion");
      CHECK(out["model"] == name);

      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
      HttpReply streamed = server.post("/v1/completions", body);
      REQUIRE_MESSAGE(streamed.status == 200, streamed.body);
      Streamed s = read_stream(streamed);
      CHECK(s.done);
      CHECK(s.ids == ids);
      CHECK(s.finish_reason == out["choices"][0]["finish_reason"]);
      CHECK(s.usage["completion_tokens"] == ids.size());
    }
  }
}

TEST_CASE("a text prompt gives the text troupe generate gives") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  const std::string prompt = "I dream of a silver city";
  auto generated = troupe::test::run_troupe("generate --model " + arg(dir) + " --prompt " +
                                            troupe::test::shell_quoted(prompt) + " --max-tokens 40 --json");
  REQUIRE_MESSAGE(generated.exit_code == 0, generated.err);
  json expected = json::parse(generated.out);
  ServeProcess server("--model " + arg(dir));
  json body = {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}};
  HttpReply whole = server.post("/v1/completions", body);
  REQUIRE_MESSAGE(whole.status == 200, whole.body);
  CHECK(whole.json()["choices"][0]["text"] == expected["text"]);
  CHECK(whole.json()["usage"]["prompt_tokens"] == expected["prompt_ids"].size());
  body["stream"] = true;
  Streamed s = read_stream(server.post("/v1/completions", body));
  CHECK(s.text == expected["text"].get<std::string>());
  // A stop string cuts the text before it, whole and streamed, with finish_reason "stop".
  const std::string generated_text = expected["text"];
  REQUIRE(generated_text.size() > 16);
  const std::string stop = generated_text.substr(10, 4);
  const std::string cut = generated_text.substr(0, generated_text.find(stop));
  json stopped_body = {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}, {"stop", {"NEVER", stop}}};
  HttpReply stopped = server.post("/v1/completions", stopped_body);
  REQUIRE_MESSAGE(stopped.status == 200, stopped.body);
  CHECK(stopped.json()["choices"][0]["text"] == cut);
  CHECK(stopped.json()["choices"][0]["finish_reason"] == "stop");
  stopped_body["stream"] = true;
  Streamed s_stopped = read_stream(server.post("/v1/completions", stopped_body));
  CHECK(s_stopped.text == cut);
  CHECK(s_stopped.finish_reason == "stop");
  // /tokenize and /detokenize agree with the model's tokenizer.
  HttpReply tokens = server.post("/tokenize", {{"prompt", prompt}});
  REQUIRE(tokens.status == 200);
  CHECK(tokens.json()["tokens"] == expected["prompt_ids"]);
  HttpReply text = server.post("/detokenize", {{"tokens", expected["ids"]}});
  REQUIRE(text.status == 200);
  CHECK(text.json()["prompt"] == expected["text"]);
}

TEST_CASE("chat completions render the chat template, and usage counts the rendered prompt") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TROUPE_REQUIRE_SHARED(tokenizer, "tokenizers/spm32k");
  const auto jinja = template_file(tokenizer);
  json messages = json::array({{{"role", "system"}, {"content", "You are a poet."}},
                               {{"role", "user"}, {"content", "Write about a silver city."}}});
  const auto messages_file = std::filesystem::path(jinja).replace_extension(".messages.json");
  std::ofstream(messages_file) << messages.dump();
  auto rendered = troupe::test::run_troupe("chat-template --tokenizer " + arg(dir) + " --chat-template " + arg(jinja) +
                                           " --messages " + arg(messages_file) + " --add-generation-prompt");
  REQUIRE_MESSAGE(rendered.exit_code == 0, rendered.err);
  auto tokens = troupe::test::run_troupe("tokenize --tokenizer " + arg(dir) + " --json --text " +
                                         troupe::test::shell_quoted(rendered.out));
  REQUIRE_MESSAGE(tokens.exit_code == 0, tokens.err);
  const size_t prompt_tokens = json::parse(tokens.out)["ids"].size();

  {  // without a template: chat is refused with a 400 that says so; completions still work
    ServeProcess plain("--model " + arg(dir));
    HttpReply refused = plain.post("/v1/chat/completions", {{"messages", messages}});
    CHECK(refused.status == 400);
    CHECK(refused.json()["error"]["message"].get<std::string>().find("no chat template") != std::string::npos);
  }
  ServeProcess server("--model " + arg(dir) + " --chat-template " + arg(jinja));
  json body = {
      {"model", "aidreams260K"}, {"messages", messages}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
  HttpReply whole = server.post("/v1/chat/completions", body);
  REQUIRE_MESSAGE(whole.status == 200, whole.body);
  json out = whole.json();
  CHECK(out["object"] == "chat.completion");
  CHECK(out["choices"][0]["message"]["role"] == "assistant");
  CHECK(out["usage"]["prompt_tokens"] == prompt_tokens);
  CHECK(out["usage"]["completion_tokens"] == 24);
  CHECK(out["choices"][0]["finish_reason"] == "length");
  HttpReply counted = server.post("/tokenize", {{"messages", messages}});
  CHECK(counted.json()["count"] == prompt_tokens);

  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  Streamed s = read_stream(server.post("/v1/chat/completions", body));
  CHECK(s.done);
  CHECK(s.text == out["choices"][0]["message"]["content"].get<std::string>());
  CHECK(s.usage["prompt_tokens"] == prompt_tokens);
  // A template error (spm32k's template insists on alternating roles) is a 400 with its message.
  json bad = {{"messages", json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}})}};
  HttpReply raised = server.post("/v1/chat/completions", bad);
  CHECK(raised.status == 400);
  std::filesystem::remove(jinja);
  std::filesystem::remove(messages_file);
}

TEST_CASE("bad requests get their 4xx while an honest concurrent stream is served") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  ServeProcess server("--model " + arg(dir) + " --api-key sesame --max-body-bytes 65536");
  const std::string key = "-H 'Authorization: Bearer sesame'";
  json honest = {{"prompt", json::array({1})}, {"max_tokens", 200}, {"temperature", 0},
                 {"ignore_eos", true},         {"stream", true},    {"return_token_ids", true}};
  auto concurrent = std::async(std::launch::async, [&] { return server.post("/v1/completions", honest, key); });

  auto status_of = [&](const std::string& path, const std::string& body, const std::string& args) {
    HttpReply r = server.http("POST", path, body, args);
    if (r.status >= 400) {
      json e = r.json();  // every error is OpenAI-shaped
      CHECK(e["error"]["message"].is_string());
      CHECK(e["error"]["code"] == r.status);
    }
    return r;
  };
  CHECK(status_of("/v1/completions", "{\"prompt\": [1, 2", key).status == 400);
  HttpReply wrong_type = status_of("/v1/completions", R"({"prompt": [1], "max_tokens": "many"})", key);
  CHECK(wrong_type.status == 400);
  CHECK(wrong_type.json()["error"]["param"] == "max_tokens");
  CHECK(status_of("/v1/completions", R"({"prompt": [1], "temperature": [0]})", key).status == 400);
  CHECK(status_of("/v1/completions", R"({"prompt": [1], "stop": 5})", key).status == 400);
  CHECK(status_of("/v1/completions", R"({"prompt": [1000000]})", key).status == 400);
  CHECK(status_of("/v1/completions", R"({"prompt": [1], "max_tokens": 100000})", key).status == 400);
  CHECK(status_of("/v1/completions", "[1]", key).status == 400);
  CHECK(status_of("/v1/completions", std::string(100000, ' ') + "{}", key).status == 413);
  CHECK(status_of("/v1/completions", "{}", key + " -H 'X-Big: " + std::string(20000, 'a') + "'").status == 431);
  CHECK(status_of("/v1/completions", R"({"prompt": [1]})", "-H 'Authorization: Bearer wrong'").status == 401);
  CHECK(status_of("/v1/completions", R"({"prompt": [1]})", "").status == 401);
  CHECK(status_of("/v1/completions", R"({"prompt": [1], "model": "gpt-4"})", key).status == 404);
  CHECK(status_of("/v1/nothing", "{}", key).status == 404);
  CHECK(server.http("GET", "/v1/completions", "", key).status == 405);
  CHECK(server.http("GET", "/health").status == 200);

  HttpReply honest_reply = concurrent.get();
  REQUIRE_MESSAGE(honest_reply.status == 200, honest_reply.body);
  Streamed s = read_stream(honest_reply);
  CHECK(s.done);
  CHECK(s.ids.size() == 200);
  CHECK(s.finish_reason == "length");
  HttpReply models = server.http("GET", "/v1/models", "", key);
  REQUIRE(models.status == 200);
  CHECK(models.json()["data"][0]["id"] == "gqa260K");
  CHECK(server.metric("troupe:request_success_total{finished_reason=\"length\"}") == 1);
  CHECK(server.metric("troupe:generation_tokens_total") == 200);
  CHECK(server.metric("troupe:time_to_first_token_seconds_count") == 1);
  CHECK(server.metric("troupe:inter_token_latency_seconds_count") == 199);
  CHECK(server.metric("troupe:rank_steps_total{rank=\"0\"}") >= 200);  // one step per token at least
  CHECK(server.metric("troupe:rank_step_seconds_total{rank=\"0\"}") > 0);
}

namespace {

// Polls /metrics (each poll a real scrape, no sleeping) until the cluster runs nothing and
// `aborted` requests have been cancelled, or the deadline passes; returns {running, aborted}.
std::pair<double, double> wait_until_freed(const ServeProcess& server, double aborted_wanted) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  double running = -1, aborted = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    running = server.metric("troupe:num_requests_running");
    aborted = server.metric("troupe:request_success_total{finished_reason=\"abort\"}");
    if (running == 0 && aborted == aborted_wanted) break;
  }
  return {running, aborted};
}

}  // namespace

TEST_CASE(
    "a client that goes away cancels its request, a full queue answers 429, a dead node 503 (node-config cluster)") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  // A simulated cluster (real processes, actors and scheduling; a step costs 50 ms), so a
  // request is surely still running when its client goes away.
  auto config = std::filesystem::temp_directory_path() / ("troupe_serve_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(config) << "[cluster]\nname = \"serve-test\"\nsecret = \"s\"\ncoordinator = \"127.0.0.1:"
                        << troupe::TcpRendezvous::free_port() << "\"\n\n[model]\npath = \"" << dir.string()
                        << "\"\n\n[parallel]\ntp = 1\npp = 2\n\n[experiment]\nstage = \"simulated\"\nfixed_ms = 50\n\n"
                           "[recovery]\nenabled = false\n\n"
                           "[[nodes]]\nname = \"node0\"\nranks = 2\n";
  ServeProcess server("--config " + arg(config) + " --max-pending-requests 1");
  json body = {{"prompt", json::array({1})}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}};
  auto file = std::filesystem::path(config).replace_extension(".body");
  std::ofstream(file) << body.dump();
  const std::string send = "curl -sS -N -H 'Content-Type: application/json' --data-binary @" + arg(file) + " ";

  // 1. Mid-stream: head takes a few events and exits; curl then fails writing and closes.
  auto cut = troupe::test::run_shell(send + server.url("/v1/completions") + " | head -c 600 >/dev/null", 60s);
  troupe::test::require_no_timeout(cut);
  auto [running, aborted] = wait_until_freed(server, 1);
  CHECK(running == 0);
  CHECK(aborted == 1);
  CHECK(server.metric("troupe:num_requests_in_flight") == 0);
  CHECK(server.metric("troupe:generation_tokens_total") < 500);

  // 2. A whole (non-streamed) request whose client gives up (curl --max-time) while it is queued
  // in the cluster; meanwhile the queue (--max-pending-requests 1) is full: 429.
  body["stream"] = false;
  std::ofstream(file) << body.dump();
  auto impatient = std::async(std::launch::async, [&] {
    // After a quick request on the same kept-alive connection (curl --next reuses it).
    return troupe::test::run_shell("curl -sS " + server.url("/health") + " --next " + send.substr(5) +
                                       "--max-time 15 " + server.url("/v1/completions"),
                                   60s);
  });
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (server.metric("troupe:num_requests_in_flight") != 1 && std::chrono::steady_clock::now() < deadline) {
  }
  HttpReply full = server.post("/v1/completions", {{"prompt", json::array({1})}, {"max_tokens", 3}});
  CHECK(full.status == 429);
  CHECK(full.json()["error"]["type"] == "rate_limit_error");
  auto gave_up = impatient.get();
  CHECK(gave_up.exit_code == 28);  // curl: operation timed out
  std::tie(running, aborted) = wait_until_freed(server, 2);
  CHECK(running == 0);
  CHECK(aborted == 2);

  // 3. And the server keeps serving.
  HttpReply after = server.post("/v1/completions", {{"prompt", json::array({1})}, {"max_tokens", 3}});
  CHECK(after.status == 200);

  // 4. The node process dies (SIGKILL, found as the grandchild of troupe serve: serve -> cluster ->
  // node): the cluster is degraded, /health and generation answer 503, the server stays up.
  auto killed = troupe::test::run_shell("kill -9 $(pgrep -P $(pgrep -P " + std::to_string(server.pid()) + "))", 30s);
  REQUIRE_MESSAGE(killed.exit_code == 0, killed.describe());
  const auto degraded_by = std::chrono::steady_clock::now() + 60s;
  int health = 0;
  while ((health = server.http("GET", "/health").status) != 503 && std::chrono::steady_clock::now() < degraded_by) {
  }
  CHECK(health == 503);
  HttpReply refused = server.post("/v1/completions", {{"prompt", json::array({1})}, {"max_tokens", 3}});
  CHECK(refused.status == 503);
  CHECK(refused.json()["error"]["type"] == "service_unavailable");
  CHECK(server.metric("troupe:cluster_state{state=\"degraded\"}") == 1);
  std::filesystem::remove(config);
  std::filesystem::remove(file);
}

TEST_CASE("chat_template_kwargs reach the template, as troupe chat-template --var renders them (qwen3)") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TROUPE_REQUIRE_SHARED(qwen3, "tokenizers/qwen3");
  // The qwen3 tokenizer does not fit this model's vocabulary: /tokenize works, generation is a 400.
  ServeProcess server("--model " + arg(dir) + " --tokenizer " + arg(qwen3));
  json messages = json::array({{{"role", "user"}, {"content", "Hello there"}}});
  const auto messages_file =
      std::filesystem::temp_directory_path() / ("troupe_serve_test_" + std::to_string(::getpid()) + "_kwargs.json");
  std::ofstream(messages_file) << messages.dump();
  std::vector<size_t> counts;
  for (bool thinking : {false, true}) {
    CAPTURE(thinking);
    auto rendered =
        troupe::test::run_troupe("chat-template --tokenizer " + arg(qwen3) + " --messages " + arg(messages_file) +
                                 " --add-generation-prompt --var enable_thinking=" + (thinking ? "true" : "false"));
    REQUIRE_MESSAGE(rendered.exit_code == 0, rendered.err);
    HttpReply expected = server.post("/tokenize", {{"prompt", rendered.out}, {"add_special_tokens", false}});
    HttpReply got =
        server.post("/tokenize", {{"messages", messages}, {"chat_template_kwargs", {{"enable_thinking", thinking}}}});
    REQUIRE_MESSAGE(got.status == 200, got.body);
    CHECK(got.json()["tokens"] == expected.json()["tokens"]);
    counts.push_back(got.json()["tokens"].size());
  }
  CHECK(counts[0] != counts[1]);  // enable_thinking=false adds an empty think block
  HttpReply generation = server.post("/v1/chat/completions", {{"messages", messages}});
  CHECK(generation.status == 400);
  CHECK(generation.json()["error"]["message"].get<std::string>().find("outside the model's vocabulary") !=
        std::string::npos);
  HttpReply bad_kwargs = server.post("/v1/chat/completions", {{"messages", messages}, {"chat_template_kwargs", 1}});
  CHECK(bad_kwargs.status == 400);
  CHECK(bad_kwargs.json()["error"]["param"] == "chat_template_kwargs");
  std::filesystem::remove(messages_file);
}

TEST_CASE("troupe serve refuses bad command lines with a message, before listening") {
  auto missing = troupe::test::run_troupe("serve --model /nonexistent/model --port 0", 60s);
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("/nonexistent/model") != std::string::npos);
  auto both = troupe::test::run_troupe("serve --model a --config b --port 0", 60s);
  CHECK(both.exit_code != 0);
  CHECK(both.err.find("exactly one of --model") != std::string::npos);
  auto port = troupe::test::run_troupe("serve --model a --port 70000", 60s);
  CHECK(port.exit_code != 0);
  CHECK(port.err.find("--port") != std::string::npos);
}
