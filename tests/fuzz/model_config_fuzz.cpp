// libFuzzer target: bytes as a Hugging Face config.json (ModelConfig::from_json_text). Parsing
// must either throw troupe::Error or give a config that everything built from it before any weight
// is read accepts or refuses with troupe::Error, without overflow or a runaway loop: the q/kv
// widths, the expected tensor names, the rotary tables, the parallel layout checks, the stages'
// layer counts and the KV cache's blocks per budget. Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <string>
#include <tuple>

#include "kernels/error.hpp"
#include "kernels/rotary_embedding.hpp"
#include "model/kv_cache.hpp"
#include "model/llama_model.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  troupe::ModelConfig c;
  try {
    c = troupe::ModelConfig::from_json_text(text, "config.json");
  } catch (const troupe::Error&) {
    return 0;  // a clear error is the expected outcome for malformed files
  }
  volatile int64_t widths = c.q_size() + c.kv_size();
  (void)widths;
  if (troupe::LlamaModel::expected_tensor_names(c).size() < 2) __builtin_trap();
  try {
    troupe::RotaryEmbedding rope(c.head_dim, c.rope_theta, c.rope_scaling);
    (void)rope;
  } catch (const troupe::Error&) {
  }
  for (auto [tp, pp, ep] : {std::tuple{1, 1, 1}, {2, 2, 1}, {2, 1, 2}, {4, 3, 4}}) {
    try {
      troupe::validate_layout(c, tp, pp, {}, ep);
      const auto stages = troupe::stage_layer_counts(c.num_hidden_layers, pp, {});
      const auto [kv_begin, kv_end] = troupe::kv_head_range(c.num_key_value_heads, tp, tp - 1);
      for (int64_t block_size : {1, 16, 1024})
        if (troupe::KvCache::blocks_for_budget(int64_t(64) << 20, stages.front(), block_size, kv_end - kv_begin,
                                               c.head_dim) < 0)
          __builtin_trap();
    } catch (const troupe::Error&) {
    }
  }
  return 0;
}
