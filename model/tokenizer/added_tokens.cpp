#include "model/tokenizer/added_tokens.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// A rough word-character test for single_word tokens: ASCII alphanumerics and any non-ASCII byte.
bool is_word_byte(char c) {
  auto b = static_cast<unsigned char>(c);
  return b >= 0x80 || std::isalnum(b) || c == '_';
}

}  // namespace

AddedTokens AddedTokens::from_json(const json& node) {
  AddedTokens added;
  if (node.is_null()) return added;
  if (!node.is_array()) fail("tokenizer.json: \"added_tokens\" is not an array");
  for (const json& entry : node) {
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() || !entry.contains("content") ||
        !entry["content"].is_string())
      fail("tokenizer.json: added token {} needs an integer \"id\" and a string \"content\"", describe(entry));
    AddedToken token;
    token.id = entry["id"].get<int>();
    if (token.id < 0) fail("tokenizer.json: added token '{}' has negative id {}", describe(entry["content"]), token.id);
    token.content = entry["content"].get<std::string>();
    if (token.content.empty()) fail("tokenizer.json: added token {} has empty content", token.id);
    token.special = entry.value("special", false);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    token.single_word = entry.value("single_word", false);
    added.index_of_id_[token.id] = added.tokens_.size();
    added.tokens_.push_back(std::move(token));
  }
  for (size_t i = 0; i < added.tokens_.size(); ++i)
    added.by_first_byte_[static_cast<unsigned char>(added.tokens_[i].content[0])].push_back(i);
  for (auto& candidates : added.by_first_byte_)
    std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
      return added.tokens_[a].content.size() > added.tokens_[b].content.size();
    });
  return added;
}

const AddedToken* AddedTokens::match_at(std::string_view text, size_t pos) const {
  for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const AddedToken& token = tokens_[index];
    if (text.compare(pos, token.content.size(), token.content) != 0) continue;
    if (token.single_word) {
      size_t end = pos + token.content.size();
      if ((pos > 0 && is_word_byte(text[pos - 1])) || (end < text.size() && is_word_byte(text[end]))) continue;
    }
    return &token;
  }
  return nullptr;
}

std::vector<TextSegment> AddedTokens::split(std::string_view text) const {
  std::vector<TextSegment> segments;
  size_t text_start = 0;  // start of the plain text not yet emitted
  for (size_t pos = 0; pos < text.size() && !tokens_.empty();) {
    const AddedToken* token =
        by_first_byte_[static_cast<unsigned char>(text[pos])].empty() ? nullptr : match_at(text, pos);
    if (!token) {
      ++pos;
      continue;
    }
    size_t text_end = pos;
    if (token->lstrip)
      while (text_end > text_start && is_space(text[text_end - 1])) --text_end;
    if (text_end > text_start) segments.push_back({text.substr(text_start, text_end - text_start), std::nullopt});
    segments.push_back({text.substr(pos, token->content.size()), token->id});
    pos += token->content.size();
    if (token->rstrip)
      while (pos < text.size() && is_space(text[pos])) ++pos;
    text_start = pos;
  }
  if (text_start < text.size()) segments.push_back({text.substr(text_start), std::nullopt});
  return segments;
}

const AddedToken* AddedTokens::find(int id) const {
  auto found = index_of_id_.find(id);
  return found == index_of_id_.end() ? nullptr : &tokens_[found->second];
}

std::optional<int> AddedTokens::find(std::string_view content) const {
  for (const AddedToken& token : tokens_)
    if (token.content == content) return token.id;
  return std::nullopt;
}

bool AddedTokens::is_special(int id) const {
  const AddedToken* token = find(id);
  return token && token->special;
}

int AddedTokens::id_limit() const {
  int limit = 0;
  for (const AddedToken& token : tokens_) limit = std::max(limit, token.id + 1);
  return limit;
}

}  // namespace troupe::tokenizer
