#pragma once
// troupe::serve::OpenAIServer: the OpenAI-compatible HTTP front door of a troupe cluster.
//
//   Client client(cluster.system(), cluster.coordinator());
//   OpenAIServer server(client, options);       // loads the tokenizer and chat template
//   int port = server.start("127.0.0.1", 8000);
//   server.set_status(client.wait_until_ready(timeout));
//
// Routes: POST /v1/completions, POST /v1/chat/completions (whole or streamed as server-sent
// events), GET /v1/models, GET /health, GET /metrics (Prometheus), POST /tokenize,
// POST /detokenize. Errors are OpenAI-shaped JSON: 400 (bad field, named), 401 (bad API key),
// 404 (unknown model or path), 405, 413/431 (HttpServer's limits), 429 (too many requests in
// flight), 503 (cluster not ready).
//
// Threads. HTTP runs on HttpServer's few I/O threads and never blocks: calls into the Client that
// wait for an answer (submit, cancel, status) run on a small pool of their own, and the Client's
// callbacks (its listener thread) only post each event to the request's connection strand. A
// client that goes away before its response is complete has its request cancelled, which frees
// the request's KV blocks in the cluster.
//
// Lifetime. The server borrows `client`, which must outlive it; stop() (or the destructor) stops
// the HTTP server, waits for the pool and the status poller, and leaves the cluster running.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "serve/http_server.hpp"

namespace troupe {
class Client;
struct ClusterStatus;
}  // namespace troupe

namespace troupe::serve {

struct OpenAIServerOptions {
  std::filesystem::path model_dir;      // config.json (max length, vocabulary), tokenizer, template
  std::filesystem::path tokenizer_dir;  // overrides the model folder's tokenizer (and its template)
  std::filesystem::path chat_template;  // a Jinja file overriding the tokenizer's chat_template
  std::string served_model_name;        // default: the model folder's name
  std::string api_key;                  // non-empty: every route but /health and /metrics needs it
  int64_t max_pending_requests = 512;   // generation requests in flight beyond which 429
  int io_threads = 1;
  int client_threads = 2;  // the pool that makes blocking Client calls
  HttpLimits limits;
};

class OpenAIServer {
 public:
  OpenAIServer(Client& client, OpenAIServerOptions options);
  ~OpenAIServer();
  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  // Listens (throws troupe::Error when it cannot) and starts polling the cluster's status.
  int start(const std::string& host, int port);
  void stop();
  // The cluster's status as last seen (generation is refused with 503 unless it is ready).
  void set_status(const ClusterStatus& status);
  const std::string& served_model_name() const;
  bool has_chat_template() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::serve
