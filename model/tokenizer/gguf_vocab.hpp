#pragma once
// A GGUF file's tokenizer (`tokenizer.ggml.*` metadata) as the Hugging Face tokenizer.json and
// tokenizer_config.json that troupe::Tokenizer reads — the conversion transformers makes when it
// loads a GGUF tokenizer:
//
//   tokenizer.ggml.model = "llama"  SentencePiece-style BPE with byte fallback: tokens, scores and
//                                   token types; merges are derived from the scores (a merge's rank
//                                   is its result's score, best first), "▁" replaces spaces and is
//                                   prepended unless tokenizer.ggml.add_space_prefix is false.
//   tokenizer.ggml.model = "gpt2"   byte-level BPE: tokens and tokenizer.ggml.merges, the split
//                                   pattern chosen by tokenizer.ggml.pre (llama-bpe, qwen2, default...).
//
// Control tokens (type 3) become special added tokens and user-defined ones (type 4) plain added
// tokens. BOS/EOS/unknown ids, add_bos_token/add_eos_token and tokenizer.chat_template go into the
// config. Everything is validated (ids inside the vocabulary, array lengths equal); a GGUF without
// tokenizer metadata has no tokenizer (nullopt).
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/gguf_file.hpp"

namespace troupe {

struct GgufTokenizerJson {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
};

std::optional<GgufTokenizerJson> gguf_tokenizer_json(const GgufFile& file);

// The other way, for `troupe convert --to gguf`: a Hugging Face tokenizer folder (tokenizer.json,
// tokenizer_config.json) as tokenizer.ggml.* metadata, as llama.cpp's converter writes it.
// SentencePiece-style BPE (byte_fallback, "▁" normalizer) becomes model "llama" with scores -id;
// byte-level BPE becomes model "gpt2" with its merges and the pre-tokenizer name its split pattern
// matches (llama-bpe, qwen2, default); other tokenizers are refused naming what differs.
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const std::filesystem::path& tokenizer_dir);

}  // namespace troupe
