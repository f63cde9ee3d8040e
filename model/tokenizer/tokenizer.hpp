#pragma once
// troupe::Tokenizer: Hugging Face tokenizer.json (byte-level BPE as in Llama 3 / Qwen, and
// SentencePiece-style BPE with byte fallback as in Llama 2 / Mistral), text <-> token ids.
//
//   auto tokenizer = troupe::Tokenizer::from_dir(model_dir);       // tokenizer.json (+ _config.json)
//   std::vector<int> ids = tokenizer.encode(prompt, /*add_special_tokens=*/true);  // BOS per config
//   std::string text = tokenizer.decode(ids);
//   troupe::StreamingDetokenizer stream(tokenizer);                 // while generating:
//   std::cout << stream.feed(next_id);  ...  std::cout << stream.finish();
//
// Invalid UTF-8 input is not an error: encode() first replaces each maximal invalid subsequence
// with U+FFFD (as Python's errors="replace"), so any byte string encodes. decode() always returns
// valid UTF-8. Added/special tokens written in the text (e.g. "<|eot_id|>") become their ids.
// Thread safety: a loaded Tokenizer may be used from many threads at once (encode, decode).
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/added_tokens.hpp"
#include "model/tokenizer/bpe_model.hpp"
#include "model/tokenizer/decoder.hpp"
#include "model/tokenizer/normalizer.hpp"
#include "model/tokenizer/post_processor.hpp"
#include "model/tokenizer/pre_tokenizer.hpp"

namespace troupe {

class Tokenizer {
 public:
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json. Throws troupe::Error
  // naming the file and the problem when they are absent or malformed.
  static Tokenizer from_dir(const std::filesystem::path& dir);
  // The tokenizer of a model as `--model` names it: a GGUF file (or a folder holding one) from its
  // tokenizer.ggml.* metadata, a folder from its tokenizer.json; nullopt when it has none.
  static std::optional<Tokenizer> from_model(const std::filesystem::path& model);
  // The same from the two files' contents (`config_json` may be empty).
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {});

  // add_special_tokens: add what the post-processor / add_bos_token / add_eos_token say (e.g. BOS).
  std::vector<int> encode(std::string_view text, bool add_special_tokens = false) const;
  // Throws troupe::Error for an id outside the vocabulary.
  std::string decode(std::span<const int> ids, bool skip_special_tokens = false) const;

  // One past the largest token id (vocabulary and added tokens).
  int vocab_size() const;
  std::optional<int> bos_id() const { return bos_id_; }
  std::optional<int> eos_id() const { return eos_id_; }
  std::optional<int> token_to_id(std::string_view token) const;
  // The token text of `id` (byte-level tokens in their byte-level spelling); throws for a bad id.
  std::string id_to_token(int id) const;
  bool is_special(int id) const { return added_tokens_.is_special(id); }

 private:
  struct EncodeCache;

  Tokenizer();
  void encode_plain_text(std::string_view text, std::vector<int>& ids) const;
  void encode_piece(std::string_view piece, bool byte_level, std::vector<int>& ids) const;

  tokenizer::AddedTokens added_tokens_;
  tokenizer::Normalizer normalizer_;
  tokenizer::PreTokenizer pre_tokenizer_;
  tokenizer::BpeModel model_;
  tokenizer::Decoder decoder_;
  tokenizer::PostProcessor post_processor_;
  std::optional<int> bos_id_, eos_id_;
  std::shared_ptr<EncodeCache> cache_;  // pre-token -> ids, shared by copies of this tokenizer
};

}  // namespace troupe
