#include "model/gguf_checkpoint.hpp"

#include <regex>
#include <vector>

#include "kernels/error.hpp"
#include "model/tokenizer/gguf_vocab.hpp"
#include "model/weight_store.hpp"

namespace troupe {

namespace {

// GGUF's per-layer tensor names and their Hugging Face counterparts (dense llama/qwen families), in
// the order llama.cpp's converter writes them.
const std::vector<std::pair<std::string, std::string>>& layer_names() {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},  // one per line: llama.cpp's order
  };
  return kNames;
}

const std::vector<std::pair<std::string, std::string>>& global_names() {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  return kNames;
}

}  // namespace

std::optional<std::string> hf_name_of_gguf_tensor(const std::string& gguf_name) {
  for (const auto& [g, h] : global_names())
    if (gguf_name == g) return h;
  static const std::regex kLayer(R"(blk\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(gguf_name, m, kLayer)) return std::nullopt;
  for (const auto& [g, h] : layer_names())
    if (m[2] == g) return "model.layers." + m[1].str() + "." + h;
  return std::nullopt;
}

namespace {

bool llama_family(const std::string& arch) { return arch == "llama"; }

int64_t meta_int(const GgufFile& f, const std::string& key, std::optional<int64_t> fallback = std::nullopt) {
  if (const auto* v = f.find(key)) return v->as_int(key);
  if (fallback) return *fallback;
  fail("{}: metadata key {} is missing", f.path().string(), key);
}

double meta_float(const GgufFile& f, const std::string& key, double fallback) {
  const auto* v = f.find(key);
  return v ? v->as_float(key) : fallback;
}

Tensor permute_rows(const Tensor& weight, int64_t heads, bool to_interleaved) {
  Tensor w = weight.to(DType::F32);
  const int64_t rows = w.size(0), cols = w.dim() > 1 ? w.size(1) : 1;
  if (heads < 1 || rows % (2 * heads) != 0) fail("cannot permute {} q/k rows over {} heads of even size", rows, heads);
  const int64_t head_dim = rows / heads, half = head_dim / 2;
  Tensor out = Tensor::empty(w.shape(), DType::F32);
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t part = 0; part < 2; ++part) {
        const int64_t rotate_half = h * head_dim + part * half + i, interleaved = h * head_dim + 2 * i + part;
        const int64_t from = to_interleaved ? rotate_half : interleaved,
                      to = to_interleaved ? interleaved : rotate_half;
        std::copy_n(src + from * cols, cols, dst + to * cols);
      }
  return out;
}

}  // namespace

std::optional<std::filesystem::path> find_gguf_model(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    if (path.extension() == ".gguf") return path;
    return std::nullopt;
  }
  if (!std::filesystem::is_directory(path, ec) || std::filesystem::exists(path / "config.json", ec))
    return std::nullopt;
  std::vector<std::filesystem::path> found;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".gguf") found.push_back(entry.path());
  if (found.size() > 1)
    fail("{} holds {} .gguf files and no config.json: name the one to load (--model {})", path.string(), found.size(),
         found[0].string());
  if (found.empty()) return std::nullopt;
  return found[0];
}

std::optional<std::string> gguf_tensor_name(const std::string& hf_name) {
  for (const auto& [g, h] : global_names())
    if (hf_name == h) return g;
  static const std::regex kLayer(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(hf_name, m, kLayer)) return std::nullopt;
  for (const auto& [g, h] : layer_names())
    if (m[2] == h) return "blk." + m[1].str() + "." + g;
  return std::nullopt;
}

ModelConfig gguf_model_config(const GgufFile& f) {
  const std::string file = f.path().string();
  const std::string arch = f.get("general.architecture").as_string("general.architecture");
  ModelConfig c;
  if (arch == "llama")
    c.model_type = "llama";
  else if (arch == "qwen2" || arch == "qwen3")
    c.model_type = arch;
  else
    fail("{}: general.architecture '{}' is not supported (llama, qwen2, qwen3)", file, arch);
  const std::string p = arch + ".";
  if (meta_int(f, p + "expert_count", 0) > 0)
    fail("{}: a mixture-of-experts GGUF ({} experts) is not supported yet; load the Hugging Face checkpoint", file,
         meta_int(f, p + "expert_count"));
  if (const auto* s = f.find(p + "rope.scaling.type"); s && s->as_string(p + "rope.scaling.type") != "none")
    fail("{}: rope scaling '{}' is not supported in GGUF files yet", file, s->as_string(p + "rope.scaling.type"));
  if (f.find_tensor("rope_freqs.weight"))
    fail("{}: a rope frequency table (rope_freqs.weight, Llama 3.1 scaling) is not supported in GGUF files yet", file);

  c.hidden_size = meta_int(f, p + "embedding_length");
  c.intermediate_size = meta_int(f, p + "feed_forward_length");
  c.num_hidden_layers = meta_int(f, p + "block_count");
  c.num_attention_heads = meta_int(f, p + "attention.head_count");
  c.num_key_value_heads = meta_int(f, p + "attention.head_count_kv", c.num_attention_heads);
  if (c.num_attention_heads < 1) fail("{}: {}attention.head_count is {}", file, p, c.num_attention_heads);
  c.head_dim = meta_int(f, p + "attention.key_length", c.hidden_size / c.num_attention_heads);
  if (meta_int(f, p + "attention.value_length", c.head_dim) != c.head_dim)
    fail("{}: value heads of another size than key heads are not supported", file);
  if (const int64_t rot = meta_int(f, p + "rope.dimension_count", c.head_dim); rot != c.head_dim)
    fail("{}: {}rope.dimension_count {} differs from the head size {} (partial rotary is not supported)", file, p, rot,
         c.head_dim);
  c.max_position_embeddings = meta_int(f, p + "context_length");
  c.rms_norm_eps = float(meta_float(f, p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = float(meta_float(f, p + "rope.freq_base", 10000.0));
  const auto* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2) fail("{}: token_embd.weight (a 2-D tensor) is missing", file);
  c.vocab_size = meta_int(f, p + "vocab_size", embd->dims[1]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  if (const auto* v = f.find("tokenizer.ggml.bos_token_id"))
    c.bos_token_id = int(v->as_int("tokenizer.ggml.bos_token_id"));
  if (const auto* v = f.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids = {int(v->as_int("tokenizer.ggml.eos_token_id"))};
  c.validate(file);
  return c;
}

std::map<std::string, Tensor> gguf_weights(const GgufFile& f, const ModelConfig& c) {
  const std::string arch = f.get("general.architecture").as_string("general.architecture");
  std::map<std::string, Tensor> out;
  for (const auto& info : f.tensors()) {
    const auto name = hf_name_of_gguf_tensor(info.name);
    if (!name) fail("{}: tensor '{}' has no place in a dense {} model", f.path().string(), info.name, arch);
    Tensor t = Tensor::empty(info.shape(), DType::F32);
    dequantize_row(info.type, f.tensor_bytes(info), t.data<float>(), info.values);  // rows are whole blocks
    if (llama_family(arch) && info.name.ends_with("attn_q.weight"))
      t = permute_to_rotate_half(t, c.num_attention_heads);
    if (llama_family(arch) && info.name.ends_with("attn_k.weight"))
      t = permute_to_rotate_half(t, c.num_key_value_heads);
    out.emplace(*name, std::move(t));
  }
  return out;
}

Tensor permute_to_interleaved(const Tensor& weight, int64_t heads) { return permute_rows(weight, heads, true); }
Tensor permute_to_rotate_half(const Tensor& weight, int64_t heads) { return permute_rows(weight, heads, false); }

size_t write_gguf_checkpoint(const std::filesystem::path& model_dir, const std::filesystem::path& out, GgmlType type,
                             const std::function<void(size_t, size_t)>& on_tensor) {
  const ModelConfig c = ModelConfig::load(model_dir);
  if (find_gguf_model(model_dir)) fail("{} is already a GGUF checkpoint", model_dir.string());
  std::string arch;
  if (c.model_type == "llama" || c.model_type == "mistral")
    arch = "llama";
  else if (c.model_type == "qwen2" || c.model_type == "qwen3")
    arch = c.model_type;
  else
    fail("{}: model_type '{}' does not convert to GGUF yet (dense llama, mistral, qwen2, qwen3)", model_dir.string(),
         c.model_type);
  if (c.rope_scaling.type != RopeScaling::Type::None)
    fail("{}: rope scaling does not convert to GGUF yet", model_dir.string());
  const std::string p = arch + ".";
  const uint32_t file_type = type == GgmlType::F32    ? 0
                             : type == GgmlType::F16  ? 1
                             : type == GgmlType::Q4_0 ? 2
                             : type == GgmlType::Q8_0 ? 7
                             : type == GgmlType::BF16 ? 32
                                                      : 0;
  if (type == GgmlType::Q4_K || type == GgmlType::Q6_K)
    fail("convert: {} is read, not written; write F32, F16, BF16, Q8_0 or Q4_0", ggml_type_name(uint32_t(type)));
  std::vector<std::pair<std::string, GgufValue>> meta = {
      {"general.architecture", GgufValue::string(arch)},
      {"general.name", GgufValue::string(std::filesystem::absolute(model_dir).filename().string())},
      {"general.file_type", GgufValue::u32(file_type)},
      {"general.alignment", GgufValue::u32(32)},
      {p + "context_length", GgufValue::u32(uint32_t(c.max_position_embeddings))},
      {p + "embedding_length", GgufValue::u32(uint32_t(c.hidden_size))},
      {p + "block_count", GgufValue::u32(uint32_t(c.num_hidden_layers))},
      {p + "feed_forward_length", GgufValue::u32(uint32_t(c.intermediate_size))},
      {p + "attention.head_count", GgufValue::u32(uint32_t(c.num_attention_heads))},
      {p + "attention.head_count_kv", GgufValue::u32(uint32_t(c.num_key_value_heads))},
      {p + "rope.freq_base", GgufValue::f32(c.rope_theta)},
      {p + "attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_norm_eps)},
      {p + "rope.dimension_count", GgufValue::u32(uint32_t(c.head_dim))},
      {p + "vocab_size", GgufValue::u32(uint32_t(c.vocab_size))},
  };
  if (c.head_dim * c.num_attention_heads != c.hidden_size) {
    meta.emplace_back(p + "attention.key_length", GgufValue::u32(uint32_t(c.head_dim)));
    meta.emplace_back(p + "attention.value_length", GgufValue::u32(uint32_t(c.head_dim)));
  }
  if (std::filesystem::exists(model_dir / "tokenizer.json"))
    for (auto& kv : gguf_tokenizer_metadata(model_dir)) meta.push_back(std::move(kv));

  const WeightStore weights = WeightStore::open(model_dir);
  std::vector<std::string> names;  // llama.cpp's order: embeddings, layers, then the output norm and head
  names.push_back("model.embed_tokens.weight");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& [g, h] : layer_names()) {
      const std::string name = "model.layers." + std::to_string(l) + "." + h;
      if (weights.contains(name)) names.push_back(name);
    }
  names.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) names.push_back("lm_head.weight");

  std::vector<GgufTensorToWrite> tensors;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (!weights.contains(name)) fail("{}: checkpoint has no tensor '{}'", model_dir.string(), name);
    Tensor t = weights.get_any_shape(name).to(DType::F32);
    if (arch == "llama" && name.ends_with("q_proj.weight")) t = permute_to_interleaved(t, c.num_attention_heads);
    if (arch == "llama" && name.ends_with("k_proj.weight")) t = permute_to_interleaved(t, c.num_key_value_heads);
    GgufTensorToWrite w;
    w.name = *gguf_tensor_name(name);
    w.dims.assign(t.shape().rbegin(), t.shape().rend());
    w.type = t.dim() == 2 && w.dims[0] % ggml_block_values(type) == 0 ? type : GgmlType::F32;
    const int64_t row = w.dims[0], rows = t.numel() / row;
    const int64_t row_bytes = ggml_row_bytes(w.type, row);
    w.bytes.assign(size_t(rows * row_bytes), '\0');
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(w.type, t.data<float>() + r * row, w.bytes.data() + r * row_bytes, row);
    tensors.push_back(std::move(w));
    if (on_tensor) on_tensor(i + 1, names.size());
  }
  write_gguf(out, meta, tensors);
  return tensors.size();
}

}  // namespace troupe
