// `troupe generate`: load a model folder and generate from a prompt, streaming as it goes.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "actors/local_group_executor.hpp"
#include "cli/command_registry.hpp"
#include "cli/context_parallel_options.hpp"
#include "cli/progress.hpp"
#include "cli/request_options.hpp"
#include "kernels/error.hpp"
#include "model/tokenizer/streaming_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"

namespace troupe::cli {
namespace {

struct GenerateOptions : RequestOptions, ContextParallelOptions {
  std::string model;
  int tp = 1, pp = 1, ep = 1, dp = 1;
  std::string pp_partition;
  std::string quantize;
};

int run_generate(const GenerateOptions& o) {
  if (o.prompt.empty() == o.prompt_ids.empty()) fail("give exactly one of --prompt or --prompt-ids");
  Progress progress("loading layers");
  auto on_progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
  std::unique_ptr<ModelExecutor> executor;
  const WeightFormat quantize = parse_weight_format(o.quantize);
  if (o.tp * o.pp * o.ep * o.cp * o.dp == 1 && o.pp_partition.empty()) {
    executor = std::make_unique<LocalModelExecutor>(o.model, KvCacheOptions{}, on_progress, quantize);
  } else {
    LocalGroupOptions group;
    group.tp = o.tp;
    group.pp = o.pp;
    group.ep = o.ep;
    group.dp = o.dp;
    group.quantize = quantize;
    group.cp = o.cp;
    std::tie(group.ring_degree, group.ulysses_degree) = o.degrees();
    if (!o.pp_partition.empty())
      for (int n : parse_id_list(o.pp_partition, "--pp-partition")) group.pp_partition.push_back(n);
    executor = std::make_unique<LocalGroupExecutor>(o.model, group, on_progress);
  }
  progress.finish();
  std::optional<Tokenizer> tokenizer = Tokenizer::from_model(o.model);
  GenerationRequest request;
  if (!o.prompt_ids.empty()) {
    for (int id : parse_id_list(o.prompt_ids, "--prompt-ids")) request.prompt_ids.push_back(id);
  } else {
    if (!tokenizer) fail("--prompt needs a tokenizer, but {} has no tokenizer.json; use --prompt-ids", o.model);
    for (int id : tokenizer->encode(o.prompt, /*add_special_tokens=*/true)) request.prompt_ids.push_back(id);
  }
  request.max_tokens = o.max_tokens;
  request.sampling = SamplingParams{o.temperature, o.top_p, o.top_k, o.seed};
  request.ignore_eos = o.ignore_eos;
  BatchGenerator generator(*executor);
  std::optional<StreamingDetokenizer> stream;
  if (tokenizer) stream.emplace(*tokenizer, /*skip_special_tokens=*/true);
  if (!o.json && tokenizer && !o.prompt.empty()) std::printf("%s", o.prompt.c_str());
  auto on_token = [&](size_t, int32_t token) {
    if (o.json) return;
    if (stream)
      std::printf("%s", stream->feed(token).c_str());
    else
      std::printf("%d ", token);
    std::fflush(stdout);
  };
  auto result = generator.run({request}, on_token)[0];
  if (o.json) {
    nlohmann::json out = {
        {"prompt_ids", request.prompt_ids}, {"ids", result.ids}, {"finish_reason", to_string(result.finish_reason)}};
    if (tokenizer) out["text"] = tokenizer->decode(std::vector<int>(result.ids.begin(), result.ids.end()), true);
    std::printf("%s\n", out.dump().c_str());
  } else {
    if (stream) std::printf("%s", stream->finish().c_str());
    std::printf("\n");
  }
  return 0;
}

TROUPE_COMMAND(
    "generate", "generate a continuation of a prompt with a model folder (HF layout) or a GGUF file",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<GenerateOptions>();
      cmd.add_option("--model", o->model, "model folder (config.json + safetensors) or GGUF file")->required();
      add_request_options(cmd, *o);
      cmd.add_option("--tp", o->tp, "tensor-parallel ranks (threads on this host)")->capture_default_str();
      cmd.add_option("--pp", o->pp, "pipeline-parallel stages (threads on this host)")->capture_default_str();
      cmd.add_option("--ep", o->ep,
                     "expert-parallel size for MoE models: 1, --tp (experts over the tp ranks) or --tp x --dp "
                     "(over every replica's: attention data-parallel)")
          ->capture_default_str();
      cmd.add_option("--dp", o->dp, "data-parallel replicas (threads on this host)")->capture_default_str();
      cmd.add_option("--pp-partition", o->pp_partition, "layers per stage, e.g. 2,2,1 (default: even)");
      cmd.add_option("--quantize", o->quantize,
                     "quantize the float linear weights at load, as GGUF does: q8_0 or q4_0 (a GGUF file's quantized "
                     "tensors keep theirs)");
      add_context_parallel_options(cmd, *o);
      return [o] { return run_generate(*o); };
    });

}  // namespace
}  // namespace troupe::cli
