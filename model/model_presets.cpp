#include "model/model_presets.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include <fmt/ranges.h>

#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"
#include "model/llama_model.hpp"
#include "model/safetensors_file.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

json llama3_rope(float factor) {
  return {{"rope_type", "llama3"},
          {"factor", factor},
          {"low_freq_factor", 1.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}};
}

const std::map<std::string, json>& presets() {
  static const std::map<std::string, json> p = {
      {"tiny",
       {{"model_type", "llama"},
        {"hidden_size", 64},
        {"intermediate_size", 160},
        {"num_hidden_layers", 4},
        {"num_attention_heads", 8},
        {"num_key_value_heads", 4},
        {"vocab_size", 512},
        {"max_position_embeddings", 256},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 10000.0},
        {"tie_word_embeddings", true},
        {"bos_token_id", 1},
        {"eos_token_id", 2}}},
      // Long prompts on few cores (context parallelism's benchmark): small layers, attention-heavy at 4k tokens.
      {"long-context",
       {{"model_type", "llama"},
        {"hidden_size", 256},
        {"intermediate_size", 704},
        {"num_hidden_layers", 4},
        {"num_attention_heads", 8},
        {"num_key_value_heads", 4},
        {"vocab_size", 512},
        {"max_position_embeddings", 16384},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 500000.0},
        {"tie_word_embeddings", true},
        {"bos_token_id", 1},
        {"eos_token_id", 2}}},
      {"llama-3.2-1b",
       {{"model_type", "llama"},
        {"hidden_size", 2048},
        {"intermediate_size", 8192},
        {"num_hidden_layers", 16},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 8},
        {"head_dim", 64},
        {"vocab_size", 128256},
        {"max_position_embeddings", 131072},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 500000.0},
        {"rope_scaling", llama3_rope(32.0f)},
        {"tie_word_embeddings", true},
        {"bos_token_id", 128000},
        {"eos_token_id", {128001, 128008, 128009}}}},
      {"llama-3.1-8b-2layers",
       {{"model_type", "llama"},
        {"hidden_size", 4096},
        {"intermediate_size", 14336},
        {"num_hidden_layers", 2},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 8},
        {"head_dim", 128},
        {"vocab_size", 128256},
        {"max_position_embeddings", 131072},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 500000.0},
        {"rope_scaling", llama3_rope(8.0f)},
        {"tie_word_embeddings", false},
        {"bos_token_id", 128000},
        {"eos_token_id", {128001, 128008, 128009}}}},
  };
  return p;
}

// splitmix64: a tiny, good-enough generator; each 1 Mi-element chunk has its own stream so the
// weights do not depend on the thread count.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, float scale, bool ones) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  constexpr int64_t kChunk = 1 << 20;
  parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      uint64_t s = seed * 0x100000001b3ull + uint64_t(c);
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
        // Uniform in [-scale, scale] (or 1.0 for norm weights).
        float v = ones ? 1.0f : (float(splitmix(s) >> 40) / float(1 << 24) * 2.0f - 1.0f) * scale;
        if (dtype == DType::BF16)
          t.data<uint16_t>()[i] = f32_to_bf16(v);
        else if (dtype == DType::F16)
          t.data<uint16_t>()[i] = f32_to_f16(v);
        else
          t.data<float>()[i] = v;
      }
    }
  });
  return t;
}

}  // namespace

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, cfg] : presets()) names.push_back(name);
  return names;
}

std::string model_preset_config_json(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end())
    fail("unknown model preset '{}' (expected one of {})", name, fmt::join(model_preset_names(), ", "));
  return it->second.dump(2);
}

void write_random_model(const std::string& preset, const std::filesystem::path& out_dir, DType dtype, uint64_t seed,
                        const std::function<void(int64_t, int64_t)>& on_progress) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    fail("make-model writes f32 or bf16 weights, not {}", dtype_name(dtype));
  json cfg = json::parse(model_preset_config_json(preset));
  cfg["torch_dtype"] = dtype == DType::BF16 ? "bfloat16" : "float32";
  cfg["architectures"] = {"LlamaForCausalLM"};
  write_random_checkpoint(cfg.dump(2), out_dir, dtype, seed, on_progress);
}

void write_random_checkpoint(const std::string& config_json, const std::filesystem::path& out_dir, DType dtype,
                             uint64_t seed, const std::function<void(int64_t, int64_t)>& on_progress) {
  ModelConfig config = ModelConfig::from_json_text(config_json, out_dir.string() + "/config.json");
  if (config.is_moe()) fail("random checkpoints cover dense models, not {}", config.model_type);
  std::filesystem::create_directories(out_dir);
  std::ofstream(out_dir / "config.json") << config_json << "\n";

  const int64_t H = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  auto shape_of = [&](const std::string& name) -> Shape {
    auto ends = [&](const char* s) { return name.ends_with(s); };
    if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return {V, H};
    if (ends("q_norm.weight") || ends("k_norm.weight")) return {config.head_dim};
    if (ends("norm.weight") || ends("layernorm.weight")) return {H};
    if (ends("q_proj.bias")) return {config.q_size()};
    if (ends("k_proj.bias") || ends("v_proj.bias")) return {config.kv_size()};
    if (ends("q_proj.weight")) return {config.q_size(), H};
    if (ends("k_proj.weight") || ends("v_proj.weight")) return {config.kv_size(), H};
    if (ends("o_proj.weight")) return {H, config.q_size()};
    if (ends("gate_proj.weight") || ends("up_proj.weight")) return {I, H};
    if (ends("down_proj.weight")) return {H, I};
    fail("make-model: no shape rule for {}", name);
  };
  std::map<std::string, Tensor> tensors;
  auto names = LlamaModel::expected_tensor_names(config);
  int64_t done = 0;
  uint64_t index = 0;
  for (const auto& name : names) {
    Shape shape = shape_of(name);
    bool is_norm = name.find("norm.weight") != std::string::npos;
    float scale = 1.0f / std::sqrt(float(shape.back()));  // keeps activations O(1) through the layers
    tensors[name] = random_tensor(shape, dtype, seed + 7919 * ++index, scale, is_norm);
    if (on_progress) on_progress(++done, int64_t(names.size()));
  }
  write_safetensors(out_dir / "model.safetensors", tensors);
}

}  // namespace troupe
