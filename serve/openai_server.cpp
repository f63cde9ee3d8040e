#include "serve/openai_server.hpp"

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <optional>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "actors/client.hpp"
#include "actors/secrets.hpp"
#include "kernels/error.hpp"
#include "model/chat_template/chat_template.hpp"
#include "model/model_config.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "serve/openai_protocol.hpp"
#include "serve/server_metrics.hpp"

namespace troupe::serve {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

uint64_t random_u64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// One generation request: lives while its connection or the Client still refers to it; every
// member is touched on the connection's strand only.
struct Generation {
  std::shared_ptr<Responder> responder;
  ApiRequest api;
  ResponseHeader header;
  std::optional<TokenChunkFormatter> chunks;  // streams only
  Clock::time_point arrived, last_token;
  int64_t request_id = -1;
  int64_t completion_tokens = 0;
  bool done = false, disconnected = false, cancel_sent = false;
};

}  // namespace

struct OpenAIServer::Impl {
  Client& client;
  OpenAIServerOptions options;
  std::optional<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;
  ModelInfo model;
  int64_t created = unix_now();
  ServerMetrics metrics;
  std::unique_ptr<HttpServer> http;
  boost::asio::thread_pool pool;

  std::mutex status_mutex;
  std::condition_variable status_cv;
  ClusterStatus status;
  bool stopping = false;
  std::thread poller;

  Impl(Client& c, OpenAIServerOptions o)
      : client(c), options(std::move(o)), pool(size_t(std::max(1, options.client_threads))) {}

  void answer(const std::shared_ptr<Responder>& r, int status, std::string body,
              const std::string& type = "application/json") {
    metrics.http_response(status);
    r->respond(status, type, std::move(body));
  }
  void answer_error(const std::shared_ptr<Responder>& r, int status, const std::string& message,
                    const std::string& param = {}) {
    answer(r, status, error_json(status, message, param));
  }

  bool ready() {
    std::lock_guard lock(status_mutex);
    return status.state == ClusterState::Ready;
  }

  void handle(HttpRequest req, std::shared_ptr<Responder> r) {
    const std::string& path = req.path;
    const bool known = path == "/health" || path == "/metrics" || path == "/v1/models" || path == "/tokenize" ||
                       path == "/detokenize" || path == "/v1/completions" || path == "/v1/chat/completions";
    if (!known) return answer_error(r, 404, "no route " + req.method + " " + path);
    const bool get = path == "/health" || path == "/metrics" || path == "/v1/models";
    if (req.method != (get ? "GET" : "POST"))
      return answer_error(r, 405, fmt::format("{} takes {}, not {}", path, get ? "GET" : "POST", req.method));
    if (!options.api_key.empty() && path != "/health" && path != "/metrics" &&
        !same_secret(req.header("authorization"), "Bearer " + options.api_key))
      return answer_error(r, 401, "missing or wrong API key (send 'Authorization: Bearer <key>')");
    try {
      if (path == "/health") {
        if (ready()) return answer(r, 200, "{}");
        return answer_error(r, 503, "the cluster is not ready");
      }
      if (path == "/metrics") return scrape(r);
      if (path == "/v1/models") return answer(r, 200, models_response(model, created));
      if (path == "/tokenize") return answer(r, 200, tokenize_response(req.body, model));
      if (path == "/detokenize") return answer(r, 200, detokenize_response(req.body, model));
      const bool chat_route = path == "/v1/chat/completions";
      ApiRequest api = chat_route ? parse_chat_request(req.body, model, random_u64())
                                  : parse_completion_request(req.body, model, random_u64());
      generate(std::move(api), r);
    } catch (const ApiError& e) {
      answer_error(r, e.status, e.what(), e.param);
    } catch (const std::exception& e) {
      answer_error(r, 500, e.what());
    }
  }

  void scrape(const std::shared_ptr<Responder>& r) {
    boost::asio::post(pool, [this, r] {
      std::optional<ClusterStatus> s;
      try {
        s = client.status(std::chrono::seconds(5));
        set_status(*s);
      } catch (const std::exception&) {
      }
      std::string body = metrics.render(s ? &*s : nullptr, http ? http->open_connections() : 0);
      answer(r, 200, std::move(body), "text/plain; version=0.0.4; charset=utf-8");
    });
  }

  void set_status(const ClusterStatus& s) {
    std::lock_guard lock(status_mutex);
    status = s;
  }

  void generate(ApiRequest api, const std::shared_ptr<Responder>& r) {
    if (!ready()) return answer_error(r, 503, "the cluster is not ready (loading, or degraded); try again later");
    if (metrics.in_flight() >= options.max_pending_requests)
      return answer_error(
          r, 429, fmt::format("too many requests in flight ({}); try again later", options.max_pending_requests));
    auto g = std::make_shared<Generation>();
    g->responder = r;
    g->api = std::move(api);
    g->header.endpoint = g->api.endpoint;
    g->header.id = fmt::format("{}-{:016x}{:016x}", g->api.endpoint == Endpoint::Chat ? "chatcmpl" : "cmpl",
                               random_u64(), random_u64());
    g->header.created = unix_now();
    g->header.model = model.served_name;
    g->arrived = Clock::now();
    metrics.request_started();
    if (g->api.stream) {
      g->chunks.emplace(g->header, g->api.include_usage);
      metrics.http_response(200);
      r->begin_stream(200, "text/event-stream; charset=utf-8");
      if (g->api.endpoint == Endpoint::Chat) r->write(role_chunk(g->header, g->api.include_usage));
    }
    r->on_disconnect([this, g] {
      g->disconnected = true;
      cancel(g);
    });
    boost::asio::post(pool, [this, g] {
      auto on_token = [this, g](const TokenEvent& e) { g->responder->post([this, g, e] { on_token_event(*g, e); }); };
      auto on_finished = [this, g](const FinishedEvent& e) {
        g->responder->post([this, g, e] { on_finished_event(*g, e); });
      };
      try {
        int64_t id = client.submit(g->api.submit, on_token, on_finished);
        g->responder->post([this, g, id] {
          g->request_id = id;
          if (g->done && !g->cancel_sent) client.forget(id);  // it finished before its id came back
          if (g->disconnected) cancel(g);
        });
      } catch (const std::exception& e) {
        std::string message = e.what();
        g->responder->post([this, g, message] {
          FinishedEvent failed;
          failed.reason = FinishReason::Error;
          failed.error = "the cluster did not take the request: " + message;
          on_finished_event(*g, failed);
        });
      }
    });
  }

  // Strand of g's connection.
  void cancel(const std::shared_ptr<Generation>& g) {
    if (g->done || g->cancel_sent || g->request_id < 0) return;  // not submitted yet: cancelled once it is
    g->cancel_sent = true;
    boost::asio::post(pool, [this, id = g->request_id] {
      client.cancel(id, std::chrono::seconds(30));
      client.forget(id);
    });
  }

  void on_token_event(Generation& g, const TokenEvent& e) {
    if (g.done) return;
    const auto now = Clock::now();
    if (g.completion_tokens == 0)
      metrics.first_token(std::chrono::duration<double>(now - g.arrived).count());
    else
      metrics.inter_token(std::chrono::duration<double>(now - g.last_token).count());
    g.last_token = now;
    ++g.completion_tokens;
    if (!g.api.stream || g.disconnected) return;
    g.responder->write(g.chunks->format(e.text, g.api.return_token_ids ? &e.token : nullptr));
  }

  void on_finished_event(Generation& g, const FinishedEvent& f) {
    if (g.done) return;
    g.done = true;
    if (g.request_id >= 0 && !g.cancel_sent) client.forget(g.request_id);  // else the cancel forgets it
    const int64_t prompt_tokens = f.prompt_tokens ? f.prompt_tokens : int64_t(g.api.submit.prompt_ids.size());
    metrics.request_finished(f.reason, prompt_tokens, f.completion_tokens, since(g.arrived));
    if (g.disconnected) return;
    if (f.reason == FinishReason::Error) {
      const bool unavailable = f.error.find("degraded") != std::string::npos ||
                               f.error.find("lost the connection") != std::string::npos ||
                               f.error.find("did not take") != std::string::npos;
      const int status = unavailable ? 503 : 500;
      if (!g.api.stream) return answer_error(g.responder, status, f.error);
      g.responder->write(error_event(status, f.error));
      g.responder->write(std::string(kDoneEvent));
      return g.responder->end_stream();
    }
    if (!g.api.stream) {
      metrics.http_response(200);
      return g.responder->respond(200, "application/json", final_response(g.header, f, g.api.return_token_ids));
    }
    g.responder->write(token_chunk(g.header, "", nullptr, finish_reason_name(f.reason), g.api.include_usage));
    if (g.api.include_usage) g.responder->write(usage_chunk(g.header, prompt_tokens, f.completion_tokens));
    g.responder->write(std::string(kDoneEvent));
    g.responder->end_stream();
  }

  void poll_status() {
    std::unique_lock lock(status_mutex);
    while (!stopping) {
      lock.unlock();
      std::optional<ClusterStatus> s;
      try {
        s = client.status(std::chrono::seconds(5));
      } catch (const std::exception&) {
      }
      lock.lock();
      if (s) status = *s;
      // A timer, not synchronisation: the status is refreshed every second until stop().
      status_cv.wait_for(lock, std::chrono::seconds(1), [this] { return stopping; });
    }
  }
};

OpenAIServer::OpenAIServer(Client& client, OpenAIServerOptions options)
    : impl_(std::make_unique<Impl>(client, std::move(options))) {
  auto& o = impl_->options;
  ModelConfig config = ModelConfig::load(o.model_dir);
  auto& m = impl_->model;
  m.served_name =
      o.served_model_name.empty() ? std::filesystem::absolute(o.model_dir).filename().string() : o.served_model_name;
  if (m.served_name.empty()) m.served_name = std::filesystem::absolute(o.model_dir).parent_path().filename().string();
  m.max_model_len = config.max_position_embeddings;
  m.vocab_size = config.vocab_size;
  const std::filesystem::path tokenizer_dir = o.tokenizer_dir.empty() ? o.model_dir : o.tokenizer_dir;
  if (auto tokenizer = Tokenizer::from_model(tokenizer_dir)) {
    impl_->tokenizer = std::move(tokenizer);
    m.tokenizer = &*impl_->tokenizer;
  } else if (!o.tokenizer_dir.empty()) {
    fail("--tokenizer {}: no tokenizer.json there", o.tokenizer_dir.string());
  }
  if (!o.chat_template.empty()) {
    impl_->chat = ChatTemplate::from_file(
        o.chat_template,
        std::filesystem::exists(tokenizer_dir / "tokenizer_config.json") ? tokenizer_dir : std::filesystem::path());
  } else {
    try {
      impl_->chat = ChatTemplate::from_tokenizer_dir(tokenizer_dir);
    } catch (const Error& e) {
      m.chat_missing_reason = e.what();
    }
  }
  if (impl_->chat) m.chat = &*impl_->chat;
  impl_->http = std::make_unique<HttpServer>(
      [impl = impl_.get()](HttpRequest req, std::shared_ptr<Responder> r) { impl->handle(std::move(req), r); },
      o.limits);
}

OpenAIServer::~OpenAIServer() { stop(); }

int OpenAIServer::start(const std::string& host, int port) {
  int bound = impl_->http->start(host, port, impl_->options.io_threads);
  impl_->poller = std::thread([impl = impl_.get()] { impl->poll_status(); });
  return bound;
}

void OpenAIServer::stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->status_mutex);
    impl_->stopping = true;
  }
  impl_->status_cv.notify_all();
  if (impl_->poller.joinable()) impl_->poller.join();
  impl_->http->stop();
  impl_->pool.join();
}

void OpenAIServer::set_status(const ClusterStatus& status) { impl_->set_status(status); }
const std::string& OpenAIServer::served_model_name() const { return impl_->model.served_name; }
bool OpenAIServer::has_chat_template() const { return impl_->model.chat != nullptr; }

}  // namespace troupe::serve
