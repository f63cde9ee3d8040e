// Single-rank mixture-of-experts forward against the independent PyTorch references (Mixtral:
// top-2 renormalised; Qwen2-MoE: top-2 not renormalised, shared expert, q/k/v biases), plus the
// per-expert load counters and the config checks.
#include <doctest/doctest.h>

#include <numeric>

#include "kernels/error.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "sched/local_model_executor.hpp"
#include "tests/moe_checks.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

void check_single_rank(const std::string& model) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  auto cases = test::load_reference_cases(dir);
  LocalModelExecutor executor(dir);
  test::check_moe_reference(executor, cases, model + " single rank");
  // Every token of every step went to top-k experts in every layer.
  auto load = executor.model().expert_load();
  REQUIRE(load.size() == size_t(executor.config().num_hidden_layers));
  int64_t first = std::accumulate(load[0].begin(), load[0].end(), int64_t(0));
  CHECK(first > 0);
  CHECK(first % executor.config().num_experts_per_tok == 0);
  for (const auto& layer : load) CHECK(std::accumulate(layer.begin(), layer.end(), int64_t(0)) == first);
  executor.model().reset_expert_load();
  CHECK(executor.model().expert_load()[0] == std::vector<int64_t>(size_t(executor.config().num_experts), 0));
}

std::string config_error(const std::string& extra) {
  std::string text = R"({"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
    "num_key_value_heads": 2, "vocab_size": 384, "moe_intermediate_size": 96, "num_experts": 8, "num_experts_per_tok": 2)" +
                     extra + "}";
  try {
    ModelConfig::from_json_text(text, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("mixtral-tiny single rank: greedy ids and prompt logits equal the reference") {
  check_single_rank("mixtral-tiny");
}
TEST_CASE("qwen2moe-tiny single rank: greedy ids and prompt logits equal the reference") {
  check_single_rank("qwen2moe-tiny");
}

TEST_CASE("qwen2_moe configs with dense layers are refused, naming the field") {
  CHECK(config_error("") == "(no error)");
  CHECK(config_error(R"(, "decoder_sparse_step": 1, "mlp_only_layers": [])") == "(no error)");
  CHECK(config_error(R"(, "decoder_sparse_step": 2)") ==
        "config.json: decoder_sparse_step (2) is not supported (expected 1: every layer a mixture of experts)");
  CHECK(config_error(R"(, "mlp_only_layers": [1])") ==
        "config.json: mlp_only_layers (1 layers, first 1) is not supported (expected none: every layer a mixture of "
        "experts)");
}

TEST_CASE("expert-parallel layouts are checked against the model, naming the numbers") {
  auto moe = ModelConfig::from_json_text(R"({"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 384, "intermediate_size": 96, "num_local_experts": 8,
    "num_experts_per_tok": 2})",
                                         "mixtral");
  auto dense = ModelConfig::from_json_text(R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 8, "vocab_size": 384, "intermediate_size": 96})",
                                           "llama");
  auto error = [](const ModelConfig& c, int tp, int ep) -> std::string {
    try {
      validate_layout(c, tp, 1, {}, ep);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error(moe, 2, 2) == "(no error)");
  CHECK(error(moe, 2, 1) == "(no error)");
  CHECK(error(moe, 3, 3) == "num_experts (8) is not divisible by expert_parallel_size (3)");
  CHECK(error(moe, 1, 2) ==
        "expert_parallel_size (2) must equal tensor_parallel_size (1): the experts are partitioned over the tp group");
  CHECK(error(moe, 2, 0) == "expert_parallel_size (0) must be at least 1");
  CHECK(error(dense, 2, 2) == "expert_parallel_size (2) needs a mixture-of-experts model, but llama is dense");
}
