#pragma once
// ModelConfig: the fields of a Hugging Face config.json that troupe's model families use
// (llama, mistral, qwen2, qwen3, mixtral, qwen2_moe), validated on load.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kernels/rotary_embedding.hpp"

namespace troupe {

struct ModelConfig {
  std::string model_type;  // "llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (qwen2 always)
  bool qk_norm = false;         // per-head q/k RMSNorm (qwen3)
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;
  std::string torch_dtype = "float32";

  // Mixture of experts (0 experts = dense).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t shared_expert_intermediate_size = 0;
  bool norm_topk_prob = true;

  bool is_moe() const { return num_experts > 0; }
  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }

  static ModelConfig from_json_text(const std::string& text, const std::string& source);
  // Reads model_dir/config.json, or a GGUF file's metadata when model_dir names one (a .gguf file,
  // or a folder holding one and no config.json: see gguf_checkpoint.hpp).
  static ModelConfig load(const std::filesystem::path& model_dir);
  // Checks internal consistency; throws troupe::Error naming the field and the expectation.
  void validate(const std::string& source) const;
};

}  // namespace troupe
