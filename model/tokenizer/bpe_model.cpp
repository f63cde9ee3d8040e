#include "model/tokenizer/bpe_model.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <queue>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

// Ids index a table of tokens: refuse absurd ones rather than allocate for them.
constexpr int64_t kMaxTokenId = 1 << 24;

// A merge is "left right" (older files) or ["left", "right"] (newer files).
std::pair<std::string, std::string> parse_merge(const json& merge, size_t rank) {
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  if (merge.is_string()) {
    const std::string& text = merge.get_ref<const std::string&>();
    size_t space = text.find(' ');
    if (space != std::string::npos && space > 0 && space + 1 < text.size() &&
        text.find(' ', space + 1) == std::string::npos)
      return {text.substr(0, space), text.substr(space + 1)};
  }
  fail("tokenizer.json: merge #{} {} is not \"left right\" or [\"left\", \"right\"]", rank, describe(merge));
}

}  // namespace

BpeModel BpeModel::from_json(const json& node) {
  if (!node.is_object()) fail("tokenizer.json: \"model\" is not an object");
  std::string type = node.value("type", std::string("BPE"));
  if (type != "BPE") fail("tokenizer.json: unsupported model type '{}' (supported: BPE)", type);
  if (!node.contains("vocab") || !node["vocab"].is_object())
    fail("tokenizer.json: the BPE model has no \"vocab\" object");
  if (node.contains("dropout") && node["dropout"].is_number() && node["dropout"].get<double>() > 0)
    fail("tokenizer.json: BPE dropout {} is not supported (expected null or 0)", describe(node["dropout"]));

  BpeModel model;
  const json& vocab = node["vocab"];
  model.vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() >= kMaxTokenId)
      fail("tokenizer.json: vocab entry '{}' has id {} (expected an integer in [0, {}))", token, describe(id_json),
           kMaxTokenId);
    int id = id_json.get<int>();
    model.vocab_[token] = id;
    if (static_cast<size_t>(id) >= model.tokens_.size()) model.tokens_.resize(static_cast<size_t>(id) + 1);
    model.tokens_[static_cast<size_t>(id)] = token;
  }

  const json empty = json::array();
  const json& merges = node.contains("merges") && !node["merges"].is_null() ? node["merges"] : empty;
  if (!merges.is_array()) fail("tokenizer.json: BPE \"merges\" is not an array");
  model.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    auto [left, right] = parse_merge(merges[rank], rank);
    auto left_id = model.token_to_id(left), right_id = model.token_to_id(right);
    auto merged_id = model.token_to_id(left + right);
    if (!left_id || !right_id || !merged_id)
      fail("tokenizer.json: merge #{} '{} {}' uses a token missing from the vocab", rank, left, right);
    // The first (lowest-rank) occurrence of a pair wins, as in Hugging Face.
    model.merges_.try_emplace(pair_key(*left_id, *right_id), Merge{static_cast<int>(rank), *merged_id});
  }

  std::string unk = optional_string(node, "unk_token");
  if (!unk.empty()) {
    model.unk_id_ = model.token_to_id(unk);
    if (!model.unk_id_) fail("tokenizer.json: unk_token '{}' is not in the vocab", unk);
  }
  model.fuse_unk_ = node.value("fuse_unk", false);
  model.byte_fallback_ = node.value("byte_fallback", false);
  model.ignore_merges_ = node.value("ignore_merges", false);
  model.continuing_subword_prefix_ = optional_string(node, "continuing_subword_prefix");
  model.end_of_word_suffix_ = optional_string(node, "end_of_word_suffix");
  const auto& alphabet = ByteLevelAlphabet::get();
  for (int b = 0; b < 256; ++b) {
    model.byte_fallback_ids_[b] = model.token_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
    model.byte_level_ids_[b] = model.token_to_id(alphabet.symbol(static_cast<uint8_t>(b))).value_or(-1);
  }
  return model;
}

std::optional<int> BpeModel::token_to_id(std::string_view token) const {
  auto found = vocab_.find(token);
  if (found == vocab_.end()) return std::nullopt;
  return found->second;
}

const std::string* BpeModel::id_to_token(int id) const {
  if (id < 0 || id >= id_limit()) return nullptr;
  const std::string& token = tokens_[static_cast<size_t>(id)];
  if (token.empty()) {  // a hole in the ids, unless "" really is a token with this id
    auto found = vocab_.find(token);
    if (found == vocab_.end() || found->second != id) return nullptr;
  }
  return &token;
}

void BpeModel::initial_symbols(std::string_view word, bool byte_level, std::vector<Symbol>& symbols) const {
  auto add = [&](int id) {
    int index = static_cast<int>(symbols.size());
    symbols.push_back({id, index - 1, -1});
  };
  // Unknown characters become unk (several in a row fuse into one with fuse_unk), as Hugging Face does.
  bool pending_unk = false;
  auto flush_unk = [&] {
    if (pending_unk) add(*unk_id_);
    pending_unk = false;
  };
  const bool affixes = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
  std::string character;
  for (size_t pos = 0; pos < word.size();) {
    size_t begin = pos;
    if (byte_level) {
      ++pos;
      int id = byte_level_ids_[static_cast<unsigned char>(word[begin])];
      if (id >= 0 && !affixes) {
        flush_unk();
        add(id);
        continue;
      }
      character = ByteLevelAlphabet::get().symbol(static_cast<unsigned char>(word[begin]));
    } else {
      pos += std::max<size_t>(1, valid_utf8_char_length(word, pos));
      character = word.substr(begin, pos - begin);
    }
    if (begin > 0) character.insert(0, continuing_subword_prefix_);
    if (pos == word.size()) character.append(end_of_word_suffix_);
    if (auto id = token_to_id(character)) {
      flush_unk();
      add(*id);
      continue;
    }
    if (byte_fallback_) {
      std::string_view raw = word.substr(begin, pos - begin);
      bool all_known = std::all_of(raw.begin(), raw.end(),
                                   [&](char b) { return byte_fallback_ids_[static_cast<unsigned char>(b)] >= 0; });
      if (all_known) {
        for (char b : raw) add(byte_fallback_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_id_) {
      if (!fuse_unk_) flush_unk();
      pending_unk = true;
    }
  }
  flush_unk();
  for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int>(i + 1);
}

void BpeModel::apply_merges(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int rank;
    int left;  // index of the left symbol
    int merged_id;
    bool operator>(const Candidate& other) const { return rank != other.rank ? rank > other.rank : left > other.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    auto merge = merges_.find(pair_key(symbols[left].id, symbols[symbols[left].next].id));
    if (merge != merges_.end()) queue.push({merge->second.rank, left, merge->second.merged_id});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);

  constexpr int kRemoved = -2;
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    // Skip stale candidates: the left symbol was merged away, or its neighbour changed since.
    if (left.id == kRemoved || left.next < 0) continue;
    auto merge = merges_.find(pair_key(left.id, symbols[left.next].id));
    if (merge == merges_.end() || merge->second.merged_id != top.merged_id || merge->second.rank != top.rank) continue;
    Symbol& right = symbols[left.next];
    left.id = top.merged_id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.id = kRemoved;
    consider(left.prev);
    consider(top.left);
  }
}

void BpeModel::encode_word(std::string_view word, bool byte_level, std::vector<int>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    std::string symbols_text = byte_level ? ByteLevelAlphabet::get().encode(word) : std::string(word);
    if (auto id = token_to_id(symbols_text)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, byte_level, symbols);
  apply_merges(symbols);
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace troupe::tokenizer
