#pragma once
// Patterns of tokenizer.json ({"String": "..."} or {"Regex": "..."}): PCRE2 regexes compiled once
// with UTF + UCP (so \p{L}, \s and lookahead behave as in Hugging Face tokenizers) and JIT.
#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::tokenizer {

// A [begin, end) byte range of a match.
using Span = std::pair<size_t, size_t>;

class Regex {
 public:
  // Throws troupe::Error naming the pattern and PCRE2's complaint when it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping, non-empty matches left to right. `text` must be valid UTF-8 (not re-checked).
  std::vector<Span> find_all(std::string_view text) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

class Pattern {
 public:
  static Pattern literal(std::string text);
  // {"String": "..."} or {"Regex": "..."}; `where` names the owner in error messages.
  static Pattern from_json(const nlohmann::json& pattern, std::string_view where);

  std::vector<Span> find_all(std::string_view text) const;
  // Replaces every match with `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // null for a literal pattern
};

}  // namespace troupe::tokenizer
