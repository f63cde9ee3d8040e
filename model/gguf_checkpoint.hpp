#pragma once
// A GGUF file as a troupe checkpoint: the Hugging Face config, tensors and tokenizer that the rest
// of troupe reads from a model folder, built from GGUF metadata (`general.architecture` and its
// hyperparameters, `tokenizer.ggml.*`) and GGUF tensor names (`blk.N.attn_q.weight`, ...).
//
//   troupe generate --model model.gguf         // or a folder holding exactly one .gguf and no config.json
//
// Architectures: llama (and mistral, written as llama), qwen2, qwen3 — dense models. Q/K rows of
// llama-family files are in ggml's interleaved-RoPE order (llama.cpp's converter permutes them);
// they are put back in Hugging Face's rotate-half order, so the model code is the same for both.
// Weights are dequantized to f32 at load (every ggml type GgufFile reads: F32, F16, BF16, Q8_0,
// Q4_0, Q4_K, Q6_K), so a quantized file gives exactly the f32 forward of its dequantized weights.
// Unsupported features (MoE GGUF, rope scaling tables, partial rotary) are refused by name.
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "kernels/tensor.hpp"
#include "model/gguf_file.hpp"
#include "model/model_config.hpp"

namespace troupe {

// The GGUF file `path` names: `path` itself when it is a file ending in .gguf, or the one .gguf
// file of a folder without config.json. nullopt for a Hugging Face folder (config.json) or a path
// that is neither. Throws when a folder without config.json holds several .gguf files.
std::optional<std::filesystem::path> find_gguf_model(const std::filesystem::path& path);

// The Hugging Face config the file's metadata describes; throws naming the key that is missing,
// of the wrong type, or unsupported.
ModelConfig gguf_model_config(const GgufFile& file);

// Every tensor under its Hugging Face name, f32, dequantized, q/k rows in rotate-half order.
std::map<std::string, Tensor> gguf_weights(const GgufFile& file, const ModelConfig& config);

// The Hugging Face name of a GGUF tensor ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
// nullopt for a name troupe has no use for.
std::optional<std::string> hf_name_of_gguf_tensor(const std::string& gguf_name);

// The GGUF tensor name of a Hugging Face one ("model.layers.3.self_attn.q_proj.weight" ->
// "blk.3.attn_q.weight"); nullopt for a name GGUF does not have.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name);

// Q/K row order: llama.cpp's converter permutes each head's rows from rotate-half (HF) to
// interleaved (ggml) order; these apply the permutation and its inverse to a [rows, cols] f32
// matrix of `heads` heads (rows = heads x head_dim).
Tensor permute_to_interleaved(const Tensor& weight, int64_t heads);
Tensor permute_to_rotate_half(const Tensor& weight, int64_t heads);

// `troupe convert --to gguf`: writes a Hugging Face checkpoint folder (dense llama / mistral /
// qwen2 / qwen3, with its tokenizer when it has one) as a GGUF file the way llama.cpp's converter
// does: GGUF names and hyperparameter keys, q/k rows interleaved (llama family), 1-D tensors F32,
// 2-D tensors as `type` (F32, F16, BF16, Q8_0, Q4_0) where their rows are whole blocks, else F32.
// `on_tensor(done, total)` reports progress. Returns the number of tensors written.
size_t write_gguf_checkpoint(const std::filesystem::path& model_dir, const std::filesystem::path& out, GgmlType type,
                             const std::function<void(size_t, size_t)>& on_tensor = {});

}  // namespace troupe
