// qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm) and mistral checkpoints, in f32, bf16 and f16,
// give the same greedy ids on one rank and split tp=2 x pp=2 (random weights: the check is that
// the parallel layout changes nothing).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "actors/local_group_executor.hpp"
#include "model/model_presets.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"

using namespace troupe;

TEST_CASE("dense model families generate the same ids single-rank and tp=2 x pp=2") {
  struct Family {
    const char* type;
    DType dtype;
  };
  for (auto [type, dtype] :
       {Family{"qwen2", DType::F32}, Family{"qwen3", DType::BF16}, Family{"mistral", DType::F16}}) {
    CAPTURE(type);
    nlohmann::json cfg = {{"model_type", type},
                          {"hidden_size", 64},
                          {"intermediate_size", 96},
                          {"num_hidden_layers", 4},
                          {"num_attention_heads", 4},
                          {"num_key_value_heads", 2},
                          {"vocab_size", 160},
                          {"max_position_embeddings", 128},
                          {"tie_word_embeddings", false},
                          {"eos_token_id", 2},
                          {"rope_theta", 1000000.0}};
    if (std::string(type) == "qwen3") cfg["head_dim"] = 32;  // qwen3 decouples head_dim from hidden / heads
    auto dir = std::filesystem::temp_directory_path() /
               (std::string("troupe_family_") + type + "_" + std::to_string(::getpid()));
    write_random_checkpoint(cfg.dump(), dir, dtype, 7);
    GenerationRequest r;
    r.prompt_ids = {1, 17, 42, 99};
    r.max_tokens = 16;
    r.ignore_eos = true;
    LocalModelExecutor single(dir);
    auto want = BatchGenerator(single).run({r})[0].ids;
    LocalGroupOptions o;
    o.tp = 2;
    o.pp = 2;
    LocalGroupExecutor split(dir, o);
    auto got = BatchGenerator(split).run({r})[0].ids;
    CHECK(got == want);
    CHECK(want.size() == 16);
    std::filesystem::remove_all(dir);
  }
}
