#include "model/model_config.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/error.hpp"
#include "model/gguf_checkpoint.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// A JSON number as T. nlohmann converts with a plain cast: 5e109 as int64_t or 1e300 as float is
// undefined behaviour, 2^40 as int silently wraps. Only a value T holds exactly (an integer written
// as 64.0 included) or, for floats, a finite value in T's range passes.
template <typename T>
T number(const json& v, const std::string& what, const std::string& source) {
  if (!v.is_number()) fail("{}: {} has the wrong type ({})", source, what, v.dump());
  if constexpr (std::is_floating_point_v<T>) {
    const double d = v.get<double>();
    if (!(std::fabs(d) <= double(std::numeric_limits<T>::max())))
      fail("{}: {} ({}) is not a finite number in range", source, what, v.dump());
    return T(d);
  } else {
    static_assert(std::is_signed_v<T>);
    using Limits = std::numeric_limits<T>;
    const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(Limits::max())
                          : v.is_number_integer()
                              ? v.get<int64_t>() >= int64_t(Limits::min()) && v.get<int64_t>() <= int64_t(Limits::max())
                              : std::trunc(v.get<double>()) == v.get<double>() &&
                                    v.get<double>() >= double(Limits::min()) &&
                                    v.get<double>() < -double(Limits::min());
    if (!in_range)
      fail("{}: {} ({}) is not an integer in {}..{}", source, what, v.dump(), Limits::min(), Limits::max());
    return v.is_number_unsigned()  ? T(v.get<uint64_t>())
           : v.is_number_integer() ? T(v.get<int64_t>())
                                   : T(v.get<double>());
  }
}

template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const std::string what = fmt::format("field '{}'", key);
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    return number<T>(j[key], what, source);
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    if (!j[key].is_array()) fail("{}: field '{}' has the wrong type ({})", source, key, j[key].dump());
    T out;
    for (const auto& x : j[key]) out.push_back(number<int64_t>(x, what, source));
    return out;
  } else {
    try {
      return j[key].get<T>();
    } catch (const json::exception&) {
      fail("{}: field '{}' has the wrong type ({})", source, key, j[key].dump());
    }
  }
}

template <typename T>
T require(const json& j, const char* key, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) fail("{}: missing required field '{}'", source, key);
  return get_or<T>(j, key, T{}, source);
}

}  // namespace

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range: a number overflows
    fail("{}: not valid JSON ({})", source, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object", source);
  ModelConfig c;
  c.model_type = get_or<std::string>(j, "model_type", "llama", source);
  static const char* known[] = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe"};
  if (std::find(std::begin(known), std::end(known), c.model_type) == std::end(known))
    fail("{}: model_type '{}' is not supported (expected llama, mistral, qwen2, qwen3, mixtral or qwen2_moe)", source,
         c.model_type);
  c.hidden_size = require<int64_t>(j, "hidden_size", source);
  c.intermediate_size = get_or<int64_t>(j, "intermediate_size", 0, source);
  c.num_hidden_layers = require<int64_t>(j, "num_hidden_layers", source);
  c.num_attention_heads = require<int64_t>(j, "num_attention_heads", source);
  c.num_key_value_heads = get_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, source);
  c.vocab_size = require<int64_t>(j, "vocab_size", source);
  c.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", 2048, source);
  c.rms_norm_eps = get_or<float>(j, "rms_norm_eps", 1e-6f, source);
  c.rope_theta = get_or<float>(j, "rope_theta", 10000.0f, source);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false, source);
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", "float32", source);
  c.attention_bias = get_or<bool>(j, "attention_bias", c.model_type == "qwen2" || c.model_type == "qwen2_moe", source);
  c.qk_norm = c.model_type == "qwen3";
  if (c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0)
    c.head_dim = c.hidden_size / c.num_attention_heads;
  c.head_dim = get_or<int64_t>(j, "head_dim", c.head_dim, source);

  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const json& rs = j["rope_scaling"];
    std::string type = get_or<std::string>(rs, "rope_type", get_or<std::string>(rs, "type", "default", source), source);
    if (type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::Llama3;
      c.rope_scaling.factor = require<float>(rs, "factor", source + " rope_scaling");
      c.rope_scaling.low_freq_factor = get_or<float>(rs, "low_freq_factor", 1.0f, source);
      c.rope_scaling.high_freq_factor = get_or<float>(rs, "high_freq_factor", 4.0f, source);
      c.rope_scaling.original_max_position_embeddings =
          get_or<int64_t>(rs, "original_max_position_embeddings", 8192, source);
    } else if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::Linear;
      c.rope_scaling.factor = require<float>(rs, "factor", source + " rope_scaling");
    } else if (type != "default") {
      fail("{}: rope_scaling type '{}' is not supported (expected llama3 or linear)", source, type);
    }
  }

  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bos_token_id = number<int>(j["bos_token_id"], "bos_token_id", source);
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer())
      c.eos_token_ids.push_back(number<int>(e, "eos_token_id", source));
    else if (e.is_array())
      for (const auto& x : e) {
        if (!x.is_number_integer()) fail("{}: eos_token_id list holds a non-integer {}", source, x.dump());
        c.eos_token_ids.push_back(number<int>(x, "eos_token_id", source));
      }
    else if (!e.is_null())
      fail("{}: eos_token_id must be an integer or a list, got {}", source, e.dump());
  }

  if (c.model_type == "mixtral") {
    c.num_experts = require<int64_t>(j, "num_local_experts", source);
    c.num_experts_per_tok = require<int64_t>(j, "num_experts_per_tok", source);
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;
  } else if (c.model_type == "qwen2_moe") {
    c.num_experts = require<int64_t>(j, "num_experts", source);
    c.num_experts_per_tok = require<int64_t>(j, "num_experts_per_tok", source);
    c.moe_intermediate_size = require<int64_t>(j, "moe_intermediate_size", source);
    c.shared_expert_intermediate_size = get_or<int64_t>(j, "shared_expert_intermediate_size", 0, source);
    c.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", false, source);
    // Every layer is sparse here; dense layers between them are not supported.
    auto step = get_or<int64_t>(j, "decoder_sparse_step", 1, source);
    if (step != 1)
      fail("{}: decoder_sparse_step ({}) is not supported (expected 1: every layer a mixture of experts)", source,
           step);
    auto mlp_only = get_or<std::vector<int64_t>>(j, "mlp_only_layers", {}, source);
    if (!mlp_only.empty())
      fail(
          "{}: mlp_only_layers ({} layers, first {}) is not supported (expected none: every layer a mixture of "
          "experts)",
          source, mlp_only.size(), mlp_only[0]);
  }
  c.validate(source);
  return c;
}

void ModelConfig::validate(const std::string& source) const {
  // Far beyond any released model, and small enough that the tensors a loader expects (layers x
  // experts names), the widths (heads x head_dim) and token ids and positions (int32) stay countable.
  constexpr int64_t kMaxWidth = int64_t(1) << 20, kMaxHeads = int64_t(1) << 16, kMaxLayers = 1024, kMaxExperts = 1024,
                    kMaxTensorsPerCheckpoint = int64_t(1) << 18, kMaxVocab = int64_t(1) << 24,
                    kMaxPositions = int64_t(1) << 28;
  auto positive = [&](const char* name, int64_t v, int64_t max) {
    if (v <= 0) fail("{}: {} ({}) must be positive", source, name, v);
    if (v > max) fail("{}: {} ({}) is larger than {}", source, name, v, max);
  };
  positive("hidden_size", hidden_size, kMaxWidth);
  positive("num_hidden_layers", num_hidden_layers, kMaxLayers);
  positive("num_attention_heads", num_attention_heads, kMaxHeads);
  positive("num_key_value_heads", num_key_value_heads, kMaxHeads);
  positive("vocab_size", vocab_size, kMaxVocab);
  positive("max_position_embeddings", max_position_embeddings, kMaxPositions);
  if (!is_moe()) positive("intermediate_size", intermediate_size, kMaxWidth);
  if (head_dim > kMaxHeads) fail("{}: head_dim ({}) is larger than {}", source, head_dim, kMaxHeads);
  if (head_dim <= 0)
    fail("{}: hidden_size ({}) is not divisible by num_attention_heads ({}) and no head_dim is given", source,
         hidden_size, num_attention_heads);
  if (head_dim % 2) fail("{}: head_dim ({}) must be even for rotary embeddings", source, head_dim);
  if (num_attention_heads % num_key_value_heads)
    fail("{}: num_attention_heads ({}) is not divisible by num_key_value_heads ({})", source, num_attention_heads,
         num_key_value_heads);
  if (!(rms_norm_eps > 0)) fail("{}: rms_norm_eps ({}) must be positive", source, rms_norm_eps);
  if (!(rope_theta > 0)) fail("{}: rope_theta ({}) must be positive", source, rope_theta);
  for (int e : eos_token_ids)
    if (e < 0 || e >= vocab_size) fail("{}: eos_token_id {} is outside the vocabulary of {}", source, e, vocab_size);
  if (is_moe()) {
    positive("num_experts", num_experts, kMaxExperts);
    positive("num_experts_per_tok", num_experts_per_tok, kMaxExperts);
    positive("moe_intermediate_size", moe_intermediate_size, kMaxWidth);
    if (shared_expert_intermediate_size < 0 || shared_expert_intermediate_size > kMaxWidth)
      fail("{}: shared_expert_intermediate_size ({}) must be in 0..{}", source, shared_expert_intermediate_size,
           kMaxWidth);
    if (num_hidden_layers * (num_experts + 1) > kMaxTensorsPerCheckpoint)
      fail("{}: {} layers of {} experts: more than {} expert tensors to load", source, num_hidden_layers, num_experts,
           kMaxTensorsPerCheckpoint);
    if (num_experts_per_tok > num_experts)
      fail("{}: num_experts_per_tok ({}) exceeds the number of experts ({})", source, num_experts_per_tok, num_experts);
  }
}

ModelConfig ModelConfig::load(const std::filesystem::path& model_dir) {
  if (auto gguf = find_gguf_model(model_dir)) return gguf_model_config(GgufFile(*gguf));
  auto path = model_dir / "config.json";
  std::ifstream in(path);
  if (!in) fail("cannot open {} (a model folder needs config.json)", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path.string());
}

}  // namespace troupe
