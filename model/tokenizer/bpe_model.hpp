#pragma once
// The BPE "model" of tokenizer.json: vocabulary, ranked merges, byte_fallback, unk_token (fuse_unk),
// ignore_merges, continuing_subword_prefix and end_of_word_suffix. Merges are applied lowest rank
// first with a priority queue over a linked list of symbols, so a word costs O(n log n).
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::tokenizer {

// Lets unordered_map<std::string, V> be searched with a string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `json` is the "model" value; only type BPE is supported. Bad merges and types throw.
  static BpeModel from_json(const nlohmann::json& json);

  // Appends the ids of one pre-tokenized piece. With `byte_level`, each byte of `word` stands for
  // its byte-level symbol (see PreTokenized::byte_level).
  void encode_word(std::string_view word, bool byte_level, std::vector<int>& out) const;

  std::optional<int> token_to_id(std::string_view token) const;
  // The token text of `id`, or nullptr when the vocabulary has no such id.
  const std::string* id_to_token(int id) const;
  // One past the largest id in the vocabulary.
  int id_limit() const { return static_cast<int>(tokens_.size()); }

 private:
  struct Merge {
    int rank;
    int merged_id;
  };
  struct Symbol {
    int id;
    int prev;
    int next;
  };
  static uint64_t pair_key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // Turns characters into initial symbols (unknown ones via byte fallback or unk).
  void initial_symbols(std::string_view word, bool byte_level, std::vector<Symbol>& symbols) const;
  void apply_merges(std::vector<Symbol>& symbols) const;

  StringMap<int> vocab_;
  std::vector<std::string> tokens_;  // id -> token ("" for holes)
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::array<int, 256> byte_fallback_ids_{};  // <0xXX> token ids, -1 when absent
  std::array<int, 256> byte_level_ids_{};     // ids of the byte-level symbols, -1 when absent
};

}  // namespace troupe::tokenizer
