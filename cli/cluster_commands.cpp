// `troupe cluster`, `troupe node` and `troupe submit`: launch a cluster from a node config file and
// drive it through the client API.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "actors/client.hpp"
#include "actors/node_runtime.hpp"
#include "cli/command_registry.hpp"
#include "cli/request_options.hpp"
#include "kernels/error.hpp"

namespace troupe::cli {
namespace {

TROUPE_COMMAND("cluster",
               "start every node of a config file on this host (separate processes) and serve until interrupted",
               [](CLI::App& cmd) -> std::function<int()> {
                 auto config = std::make_shared<std::string>();
                 auto model = std::make_shared<std::string>();
                 cmd.add_option("--config", *config, "node config file (TOML)")->required();
                 cmd.add_option("--model", *model, "model folder (overrides [model] path)");
                 return [config, model] {
                   ClusterLaunch launch;
                   launch.config = ClusterConfig::load(*config);
                   launch.config_file = std::filesystem::absolute(*config);
                   if (!model->empty()) launch.model_override = std::filesystem::absolute(*model);
                   return run_cluster(launch);
                 };
               });

TROUPE_COMMAND("node", "start one node of a cluster (one per host in a real deployment)",
               [](CLI::App& cmd) -> std::function<int()> {
                 auto config = std::make_shared<std::string>();
                 auto node = std::make_shared<std::string>();
                 auto model = std::make_shared<std::string>();
                 cmd.add_option("--config", *config, "node config file (TOML)")->required();
                 cmd.add_option("--node", *node, "this node's name in the config")->required();
                 cmd.add_option("--model", *model, "model folder (overrides [model] path)");
                 return [config, node, model] { return run_node(ClusterConfig::load(*config), *node, *model); };
               });

struct SubmitOptions : RequestOptions, ClientCertificateOptions {
  std::string config;
  std::vector<std::string> stop;
  int64_t timeout_ms = 600000;
};

int run_submit(const SubmitOptions& o) {
  if (o.prompt.empty() == o.prompt_ids.empty()) fail("give exactly one of --prompt or --prompt-ids");
  ClusterConfig config = ClusterConfig::load(o.config);
  auto client = Client::connect(config.coordinator_host, config.coordinator_port, config.startup_timeout,
                                config.client_credentials(o.tls_cert, o.tls_key));
  client->wait_until_ready(config.startup_timeout);
  SubmitRequest req;
  req.prompt = o.prompt;
  if (!o.prompt_ids.empty()) req.prompt_ids = parse_id_list(o.prompt_ids, "--prompt-ids");
  req.max_tokens = o.max_tokens;
  req.temperature = o.temperature;
  req.top_p = o.top_p;
  req.top_k = o.top_k;
  req.seed = o.seed;
  req.stop = o.stop;
  req.ignore_eos = o.ignore_eos;
  bool has_text = false;
  std::string streamed;
  if (!o.json && !o.prompt.empty()) std::printf("%s", o.prompt.c_str());
  auto on_token = [&](const TokenEvent& t) {
    has_text = t.has_text;
    if (o.json) return;
    streamed += t.text;
    if (t.has_text)
      std::printf("%s", t.text.c_str());
    else
      std::printf("%d ", t.token);
    std::fflush(stdout);
  };
  FinishedEvent out = client->generate(req, on_token, std::chrono::milliseconds(o.timeout_ms));
  if (out.reason == FinishReason::Error) fail("{}", out.error);
  if (o.json) {
    nlohmann::json j = {{"prompt_ids", out.prompt_ids}, {"ids", out.ids}, {"finish_reason", to_string(out.reason)}};
    if (!out.text.empty() || has_text) j["text"] = out.text;
    std::printf("%s\n", j.dump().c_str());
  } else {
    // The detokenizer holds back an unfinished character until the end: print what is left.
    if (out.text.size() > streamed.size() && out.text.compare(0, streamed.size(), streamed) == 0)
      std::printf("%s", out.text.substr(streamed.size()).c_str());
    std::printf("\n");
  }
  return 0;
}

TROUPE_COMMAND("submit", "submit one request to the running cluster a config names and print its output",
               [](CLI::App& cmd) -> std::function<int()> {
                 auto o = std::make_shared<SubmitOptions>();
                 cmd.add_option("--config", o->config, "the cluster's node config file")->required();
                 add_request_options(cmd, *o);
                 add_client_certificate_options(cmd, *o);
                 cmd.add_option("--stop", o->stop, "stop string (repeatable)");
                 cmd.add_option("--timeout-ms", o->timeout_ms, "give up after this long")->capture_default_str();
                 return [o] { return run_submit(*o); };
               });

}  // namespace
}  // namespace troupe::cli
