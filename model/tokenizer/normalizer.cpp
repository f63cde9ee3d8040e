#include "model/tokenizer/normalizer.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/pattern.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

std::string utf8proc_normalize(std::string_view text, bool compatibility) {
  auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                                (compatibility ? UTF8PROC_COMPAT : 0));
  utf8proc_uint8_t* result = nullptr;
  utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                         static_cast<utf8proc_ssize_t>(text.size()), &result, options);
  if (length < 0) fail("Unicode normalization failed: {}", utf8proc_errmsg(length));
  std::string normalized(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
  std::free(result);
  return normalized;
}

}  // namespace

std::string unicode_normalize(std::string_view text, bool compatibility) {
  // Most text is unchanged by normalization: only hand the library the stretches that may change.
  // Below U+0300 nothing changes under NFC (lead bytes < 0xCC); NFKC also rewrites some Latin-1.
  // An ASCII character never composes with what precedes it, so the text before one normalizes
  // independently of the text after: stretches start and end at ASCII characters.
  const unsigned char first_suspect = compatibility ? 0x80 : 0xCC;
  auto is_ascii = [&](size_t i) { return static_cast<unsigned char>(text[i]) < 0x80; };
  std::string out;
  size_t copied = 0;
  while (copied < text.size()) {
    size_t suspect = copied;
    while (suspect < text.size() && static_cast<unsigned char>(text[suspect]) < first_suspect) ++suspect;
    if (suspect == text.size()) break;
    size_t begin = suspect, end = suspect;
    while (begin > copied && !is_ascii(begin)) --begin;  // back to the starter it may compose with
    while (end < text.size() && !is_ascii(end)) ++end;
    if (out.empty()) out.reserve(text.size() + 16);
    out.append(text.substr(copied, begin - copied));
    out.append(utf8proc_normalize(text.substr(begin, end - begin), compatibility));
    copied = end;
  }
  if (copied == 0) return std::string(text);
  out.append(text.substr(copied));
  return out;
}

namespace {

class PrependStep : public NormalizerStep {
 public:
  explicit PrependStep(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string apply(std::string text) const override {
    if (text.empty()) return text;  // as Hugging Face: nothing to prepend to
    return prefix_ + text;
  }

 private:
  std::string prefix_;
};

class ReplaceStep : public NormalizerStep {
 public:
  ReplaceStep(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string apply(std::string text) const override { return pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class UnicodeNormalizationStep : public NormalizerStep {
 public:
  explicit UnicodeNormalizationStep(bool compatibility) : compatibility_(compatibility) {}
  std::string apply(std::string text) const override { return unicode_normalize(text, compatibility_); }

 private:
  bool compatibility_;
};

void add_steps(const json& node, std::vector<std::shared_ptr<const NormalizerStep>>& steps) {
  if (node.is_null()) return;
  const std::string type = stage_type(node, "normalizer");
  if (type == "Sequence") {
    for (const json& child : sequence_children(node, "normalizers", "normalizer")) add_steps(child, steps);
  } else if (type == "Prepend") {
    steps.push_back(std::make_shared<PrependStep>(node.at("prepend").get<std::string>()));
  } else if (type == "Replace") {
    steps.push_back(std::make_shared<ReplaceStep>(Pattern::from_json(node.at("pattern"), "Replace normalizer"),
                                                  node.at("content").get<std::string>()));
  } else if (type == "NFC" || type == "NFKC") {
    steps.push_back(std::make_shared<UnicodeNormalizationStep>(type == "NFKC"));
  } else {
    fail("tokenizer.json: unsupported normalizer type '{}' (supported: Sequence, Prepend, Replace, NFC, NFKC)",
         type);
  }
}

}  // namespace

Normalizer Normalizer::from_json(const json& node) {
  Normalizer normalizer;
  add_steps(node, normalizer.steps_);
  return normalizer;
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string result(text);
  for (const auto& step : steps_) result = step->apply(std::move(result));
  return result;
}

}  // namespace troupe::tokenizer
