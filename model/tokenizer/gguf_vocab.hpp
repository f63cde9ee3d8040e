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
#include <optional>
#include <string>

#include "model/gguf_file.hpp"

namespace troupe {

struct GgufTokenizerJson {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
};

std::optional<GgufTokenizerJson> gguf_tokenizer_json(const GgufFile& file);

}  // namespace troupe
