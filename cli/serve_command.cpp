// `troupe serve`: an OpenAI-compatible HTTP server (serve/) in front of a troupe cluster.
//   troupe serve --model DIR [--tp N --pp N --ep N]   an in-process cluster (ranks are threads)
//   troupe serve --config cluster.toml                starts `troupe cluster` (head + node processes)
//                                                     and serves it from the head's coordinator
//   troupe serve --config cluster.toml --attach       serves a cluster that is already running
// Loopback by default. Prints "troupe serve: ready at http://HOST:PORT" on stderr once the cluster
// is ready; serves until SIGINT/SIGTERM, then stops the server and the cluster.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "actors/client.hpp"
#include "actors/cluster_config.hpp"
#include "actors/in_process_cluster.hpp"
#include "actors/node_runtime.hpp"
#include "cli/command_registry.hpp"
#include "cli/context_parallel_options.hpp"
#include "cli/request_options.hpp"
#include "kernels/error.hpp"
#include "serve/local_cluster.hpp"
#include "serve/openai_server.hpp"

namespace troupe::cli {
namespace {

struct ServeOptions : ClientCertificateOptions, ContextParallelOptions {
  std::string model, config;
  bool attach = false;
  int tp = 1, pp = 1, ep = 1, dp = 1;
  std::string quantize = "none";
  int64_t max_num_seqs = 64, max_num_batched_tokens = 512, kv_cache_bytes = 64ll << 20;
  std::string host = "127.0.0.1";
  int port = 8000;
  serve::OpenAIServerOptions server;  // the HTTP flags bind to it directly (model_dir is set in run_serve)
  int64_t max_body_bytes = 1 << 20;   // checked for >= 1 before it becomes server.limits.max_body_bytes
  int64_t startup_timeout_ms = 300000;
};

int run_serve(ServeOptions o) {
  if (o.model.empty() == o.config.empty()) fail("give exactly one of --model DIR or --config FILE");
  if (o.attach && o.config.empty()) fail("--attach needs --config");
  if (o.port < 0 || o.port > 65535) fail("--port {}: not in 0..65535", o.port);
  const serve::HttpLimits& limits = o.server.limits;
  if (o.server.io_threads < 1 || o.server.io_threads > 64) fail("--io-threads {}: give 1..64", o.server.io_threads);
  if (o.max_body_bytes < 1 || limits.max_connections < 1 || o.server.max_pending_requests < 1)
    fail("--max-body-bytes, --max-connections and --max-pending-requests must be >= 1");
  if (!(limits.idle_timeout_s > 0 && limits.read_timeout_s > 0 && limits.write_timeout_s > 0))
    fail("--idle-timeout, --read-timeout and --write-timeout must be > 0 seconds");
  o.server.limits.max_body_bytes = size_t(o.max_body_bytes);
  if (o.server.api_key.empty())
    if (const char* key = std::getenv("TROUPE_API_KEY")) o.server.api_key = key;
  // Every thread started from here on inherits this mask: the signals wait for sigwait below.
  const sigset_t stop_signals = block_stop_signals();

  const auto startup = std::chrono::milliseconds(o.startup_timeout_ms);

  std::unique_ptr<InProcessCluster> cluster;
  std::unique_ptr<Client> client;
  pid_t cluster_pid = -1;
  if (!o.model.empty()) {
    ClusterConfig config =
        serve::local_cluster_config({o.model, o.tp, o.pp, o.ep, o.max_num_seqs, o.max_num_batched_tokens,
                                     o.kv_cache_bytes, o.cp, o.ring_degree, o.ulysses_degree, o.dp, o.quantize});
    o.server.model_dir = config.model_path;
    cluster = std::make_unique<InProcessCluster>(config);
    client = std::make_unique<Client>(cluster->system(), cluster->coordinator());
  } else {
    ClusterConfig config = ClusterConfig::load(o.config);
    o.server.model_dir = config.model_path;
    if (!o.attach)
      cluster_pid = spawn_troupe({"cluster", "--config", std::filesystem::absolute(o.config).string()},
                                 "`troupe cluster --config " + o.config + "`", /*end_with_this_process=*/true);
    // Serving a cluster it starts, serve is that cluster's head host and presents the node
    // certificate; attached, it is a client like any other.
    client = Client::connect(config.coordinator_host, config.coordinator_port, config.startup_timeout,
                             o.attach ? config.client_credentials(o.tls_cert, o.tls_key) : config.tls);
  }
  {
    serve::OpenAIServer server(*client, o.server);
    const int port = server.start(o.host, o.port);
    std::fprintf(stderr, "troupe serve: listening on http://%s:%d (model '%s'%s), loading the cluster\n",
                 o.host.c_str(), port, server.served_model_name().c_str(),
                 server.has_chat_template() ? "" : ", no chat template");
    server.set_status(client->wait_until_ready(startup));
    std::fprintf(stderr, "troupe serve: ready at http://%s:%d\n", o.host.c_str(), port);
    std::fflush(stderr);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    std::fprintf(stderr, "troupe serve: shutting down (%s)\n", strsignal(signal_number));
    server.stop();
  }
  client.reset();
  cluster.reset();
  if (cluster_pid > 0) {
    kill(cluster_pid, SIGTERM);
    waitpid(cluster_pid, nullptr, 0);  // run_cluster bounds its own teardown (kTeardownGrace)
  }
  return 0;
}

TROUPE_COMMAND(
    "serve", "serve a model over an OpenAI-compatible HTTP API (completions, chat, streaming, metrics)",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<ServeOptions>();
      cmd.add_option("--model", o->model, "model folder or GGUF file: an in-process cluster with --tp x --pp ranks");
      cmd.add_option("--config", o->config, "node config (TOML): start that cluster and serve it from its head");
      cmd.add_flag("--attach", o->attach, "with --config: serve a cluster that is already running");
      add_client_certificate_options(cmd, *o);
      cmd.add_option("--tp", o->tp, "tensor-parallel ranks")->capture_default_str();
      cmd.add_option("--pp", o->pp, "pipeline-parallel stages")->capture_default_str();
      cmd.add_option("--ep", o->ep, "expert-parallel size (MoE): 1, --tp or --tp x --dp")->capture_default_str();
      cmd.add_option("--dp", o->dp, "data-parallel replicas")->capture_default_str();
      cmd.add_option("--quantize", o->quantize, "quantize the float linear weights at load: q8_0, q4_0 or none")
          ->capture_default_str();
      add_context_parallel_options(cmd, *o);
      cmd.add_option("--max-num-seqs", o->max_num_seqs, "sequences batched at once")->capture_default_str();
      cmd.add_option("--max-num-batched-tokens", o->max_num_batched_tokens, "tokens per step")->capture_default_str();
      cmd.add_option("--kv-cache-bytes", o->kv_cache_bytes, "KV cache per rank")->capture_default_str();
      cmd.add_option("--host", o->host, "address to listen on (loopback by default)")->capture_default_str();
      cmd.add_option("--port", o->port, "port (0: any free port)")->capture_default_str();
      cmd.add_option("--api-key", o->server.api_key, "require 'Authorization: Bearer KEY' (default: $TROUPE_API_KEY)");
      cmd.add_option("--tokenizer", o->server.tokenizer_dir, "tokenizer folder (default: the model folder)");
      cmd.add_option("--chat-template", o->server.chat_template, "Jinja chat template file (default: the tokenizer's)");
      cmd.add_option("--served-model-name", o->server.served_model_name,
                     "the model's name in the API (default: folder name)");
      cmd.add_option("--max-pending-requests", o->server.max_pending_requests, "requests in flight beyond which 429")
          ->capture_default_str();
      cmd.add_option("--max-body-bytes", o->max_body_bytes, "request body limit (413 beyond)")->capture_default_str();
      cmd.add_option("--max-connections", o->server.limits.max_connections, "open connections beyond which 503")
          ->capture_default_str();
      cmd.add_option("--io-threads", o->server.io_threads, "HTTP I/O threads")->capture_default_str();
      cmd.add_option("--idle-timeout", o->server.limits.idle_timeout_s, "seconds a keep-alive connection may idle")
          ->capture_default_str();
      cmd.add_option("--read-timeout", o->server.limits.read_timeout_s, "seconds a request may take to arrive")
          ->capture_default_str();
      cmd.add_option("--write-timeout", o->server.limits.write_timeout_s, "seconds a client may take to read a write")
          ->capture_default_str();
      cmd.add_option("--startup-timeout-ms", o->startup_timeout_ms, "wait this long for the cluster")
          ->capture_default_str();
      return [o] { return run_serve(*o); };
    });

}  // namespace
}  // namespace troupe::cli
