// Submits prompts to a running troupe cluster through the actor API and prints each request's
// output as it streams.
//
//   troupe cluster --config examples/cluster/local-4.toml &
//   build/bin/submit_requests --config examples/cluster/local-4.toml "Once upon a time" "The machine"
#include <CLI/CLI.hpp>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "actors/client.hpp"
#include "actors/cluster_config.hpp"
#include "kernels/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"submit prompts to a running troupe cluster and stream the answers"};
  std::string config_path;
  std::vector<std::string> prompts = {"I dream of a silver city", "The machine", "Once upon a time"};
  int64_t max_tokens = 40;
  app.add_option("--config", config_path, "the cluster's node config file")->required();
  app.add_option("--max-tokens", max_tokens, "tokens per request")->capture_default_str();
  std::vector<std::string> id_prompts;
  app.add_option("prompts", prompts, "prompts (text)");
  app.add_option("--prompt-ids", id_prompts,
                 "a prompt as comma-separated token ids (repeatable; replaces the text prompts)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto config = troupe::ClusterConfig::load(config_path);
    auto client = troupe::Client::connect(config.coordinator_host, config.coordinator_port, config.startup_timeout);
    auto status = client->wait_until_ready(config.startup_timeout);
    std::printf("cluster '%s' ready: %d ranks (tp %d x pp %d x dp %d)\n", config.name.c_str(), status.world_size,
                config.tp, config.pp, config.dp);
    std::mutex m;
    std::condition_variable cv;
    size_t done = 0;
    std::vector<std::string> texts(prompts.size());
    if (!id_prompts.empty()) prompts = id_prompts;
    for (size_t i = 0; i < prompts.size(); ++i) {
      troupe::SubmitRequest req;
      if (id_prompts.empty()) {
        req.prompt = prompts[i];
      } else {
        std::istringstream ids(prompts[i]);
        for (std::string id; std::getline(ids, id, ',');) req.prompt_ids.push_back(std::stoi(id));
      }
      req.max_tokens = max_tokens;
      client->submit(
          req,
          [&, i](const troupe::TokenEvent& t) {
            std::lock_guard lock(m);
            texts[i] += t.text;
            std::printf("[request %zu] +%s\n", i,
                        t.has_text ? ("\"" + t.text + "\"").c_str() : std::to_string(t.token).c_str());
          },
          [&, i](const troupe::FinishedEvent& e) {
            std::lock_guard lock(m);
            ++done;
            if (e.reason == troupe::FinishReason::Error) std::printf("[request %zu] error: %s\n", i, e.error.c_str());
            texts[i] = prompts[i] + (e.text.empty() && !e.ids.empty() ? " ->" : "") + e.text;
            for (int32_t id : e.ids)
              if (e.text.empty()) texts[i] += " " + std::to_string(id);
            cv.notify_all();
          });
    }
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done == prompts.size(); });
    std::printf("\n");
    for (size_t i = 0; i < prompts.size(); ++i) std::printf("== request %zu ==\n%s\n\n", i, texts[i].c_str());
  } catch (const troupe::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
