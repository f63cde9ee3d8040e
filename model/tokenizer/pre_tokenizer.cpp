#include "model/tokenizer/pre_tokenizer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/pattern.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail(
      "tokenizer.json: unknown Split behavior '{}' (expected Removed, Isolated, MergedWithPrevious, "
      "MergedWithNext or Contiguous)",
      name);
}

// Cuts `piece` at `matches` and appends the parts to `out` following Hugging Face's
// NormalizedString::split: matches and the gaps between them alternate, then merge per behaviour.
void split_piece(std::string_view piece, const std::vector<Span>& matches, SplitBehavior behavior, bool invert,
                 std::vector<std::string_view>& out) {
  if (behavior == SplitBehavior::Isolated) {  // the common case: every match and gap on its own
    size_t covered = 0;
    for (const Span& match : matches) {
      if (match.first > covered) out.push_back(piece.substr(covered, match.first - covered));
      out.push_back(piece.substr(match.first, match.second - match.first));
      covered = match.second;
    }
    if (covered < piece.size()) out.push_back(piece.substr(covered));
    return;
  }
  struct Part {
    Span span;
    bool is_match;
  };
  std::vector<Part> parts;
  size_t covered = 0;
  for (const Span& match : matches) {
    if (match.first > covered) parts.push_back({{covered, match.first}, invert});
    parts.push_back({match, !invert});
    covered = match.second;
  }
  if (covered < piece.size()) parts.push_back({{covered, piece.size()}, invert});

  std::vector<Span> kept;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const Part& part : parts) kept.push_back(part.span);
      break;
    case SplitBehavior::Removed:
      for (const Part& part : parts)
        if (!part.is_match) kept.push_back(part.span);
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const Part& part : parts) {
        if (part.is_match && !previous_match && !kept.empty())
          kept.back().second = part.span.second;
        else
          kept.push_back(part.span);
        previous_match = part.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
        if (part->is_match && !previous_match && !kept.empty())
          kept.back().first = part->span.first;
        else
          kept.push_back(part->span);
        previous_match = part->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::Contiguous:
      for (const Part& part : parts) {
        if (part.is_match == previous_match && !kept.empty())
          kept.back().second = part.span.second;
        else
          kept.push_back(part.span);
        previous_match = part.is_match;
      }
      break;
  }
  for (const Span& span : kept)
    if (span.second > span.first) out.push_back(piece.substr(span.first, span.second - span.first));
}

PreTokenizer::Step split_step(Pattern pattern, SplitBehavior behavior, bool invert) {
  return [pattern = std::move(pattern), behavior, invert](PreTokenized& text) {
    std::vector<std::string_view> pieces;
    pieces.reserve(text.pieces.size() * 2);
    for (std::string_view piece : text.pieces) split_piece(piece, pattern.find_all(piece), behavior, invert, pieces);
    text.pieces = std::move(pieces);
  };
}

// GPT-2's own split, used by ByteLevel when "use_regex" is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

PreTokenizer::Step byte_level_step(bool add_prefix_space, bool use_regex, bool is_last) {
  std::shared_ptr<const Regex> gpt2_split;
  if (use_regex) gpt2_split = std::make_shared<const Regex>(kGpt2Pattern);
  return [add_prefix_space, is_last, gpt2_split](PreTokenized& text) {
    if (!add_prefix_space && !gpt2_split && is_last) {  // nothing to split: just mark the pieces
      text.byte_level = true;
      return;
    }
    std::vector<std::string_view> pieces;
    for (std::string_view piece : text.pieces) {
      if (add_prefix_space && !piece.starts_with(' ')) {
        std::string spaced(1, ' ');
        spaced.append(piece);
        piece = text.store(std::move(spaced));
      }
      if (gpt2_split)
        split_piece(piece, gpt2_split->find_all(piece), SplitBehavior::Isolated, false, pieces);
      else
        pieces.push_back(piece);
    }
    if (is_last) {
      text.byte_level = true;
    } else {  // later steps must see the byte-level symbols themselves
      const auto& alphabet = ByteLevelAlphabet::get();
      for (auto& piece : pieces) piece = text.store(alphabet.encode(piece));
    }
    text.pieces = std::move(pieces);
  };
}

enum class Prepend { Always, First, Never };

PreTokenizer::Step metaspace_step(std::string replacement_text, Prepend prepend_scheme, bool split) {
  return [replacement_text = std::move(replacement_text), prepend_scheme, split](PreTokenized& text) {
    std::vector<std::string_view> pieces;
    const Pattern space = Pattern::literal(" ");
    const Pattern replacement = Pattern::literal(replacement_text);
    for (size_t i = 0; i < text.pieces.size(); ++i) {
      std::string replaced = space.replace_all(text.pieces[i], replacement_text);
      bool prepend = prepend_scheme == Prepend::Always || (prepend_scheme == Prepend::First && i == 0);
      if (prepend && !std::string_view(replaced).starts_with(replacement_text)) replaced.insert(0, replacement_text);
      std::string_view piece = text.store(std::move(replaced));
      if (split)
        split_piece(piece, replacement.find_all(piece), SplitBehavior::MergedWithNext, false, pieces);
      else
        pieces.push_back(piece);
    }
    text.pieces = std::move(pieces);
  };
}

Prepend parse_prepend_scheme(const json& node) {
  if (node.contains("prepend_scheme")) {
    const std::string scheme = node["prepend_scheme"];
    if (scheme == "always") return Prepend::Always;
    if (scheme == "first") return Prepend::First;
    if (scheme == "never") return Prepend::Never;
    fail("tokenizer.json: Metaspace prepend_scheme '{}' is not always, first or never", scheme);
  }
  // Older files say add_prefix_space instead.
  return node.value("add_prefix_space", true) ? Prepend::Always : Prepend::Never;
}

void add_steps(const json& node, bool is_last, std::vector<PreTokenizer::Step>& steps) {
  if (node.is_null()) return;
  const std::string type = stage_type(node, "pre_tokenizer");
  if (type == "Sequence") {
    const json& children = sequence_children(node, "pretokenizers", "pre_tokenizer");
    for (size_t i = 0; i < children.size(); ++i) add_steps(children[i], is_last && i + 1 == children.size(), steps);
  } else if (type == "Split") {
    steps.push_back(split_step(Pattern::from_json(node.at("pattern"), "Split pre_tokenizer"),
                               parse_behavior(node.at("behavior")), node.value("invert", false)));
  } else if (type == "ByteLevel") {
    steps.push_back(byte_level_step(node.value("add_prefix_space", true), node.value("use_regex", true), is_last));
  } else if (type == "Metaspace") {
    steps.push_back(metaspace_step(node.value("replacement", std::string(kSentencePieceSpace)),
                                   parse_prepend_scheme(node), node.value("split", true)));
  } else if (type == "Digits") {
    bool individual = node.value("individual_digits", false);
    steps.push_back(split_step(Pattern::from_json(json{{"Regex", "\\p{N}"}}, "Digits"),
                               individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false));
  } else {
    fail(
        "tokenizer.json: unsupported pre_tokenizer type '{}' (supported: Sequence, Split, ByteLevel, "
        "Metaspace, Digits)",
        type);
  }
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const json& node) {
  PreTokenizer pre_tokenizer;
  add_steps(node, true, pre_tokenizer.steps_);
  return pre_tokenizer;
}

PreTokenized PreTokenizer::split(std::string_view text) const {
  PreTokenized result;
  if (!text.empty()) result.pieces.push_back(text);
  for (const auto& step : steps_) step(result);
  return result;
}

}  // namespace troupe::tokenizer
