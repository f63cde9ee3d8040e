#include "model/tokenizer/normalizer.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/pattern.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

// utf8proc puts combining marks in canonical order with a gnome sort, quadratic in the length of a
// run of marks: a few hundred KB of marks would take minutes. Real text has short runs (UAX #15's
// stream-safe limit is 30); past that, decompose and stable-sort the runs here first, which leaves
// utf8proc's sort a single linear pass.
constexpr size_t kLongMarkRun = 32;

bool has_long_mark_run(std::string_view text) {
  size_t run = 0;
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = next_code_point(text, pos);
    run = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class ? run + 1 : 0;
    if (run > kLongMarkRun) return true;
  }
  return false;
}

std::string decompose_and_order_marks(std::string_view text, bool compatibility) {
  auto options = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compatibility ? UTF8PROC_COMPAT : 0));
  std::vector<utf8proc_int32_t> code_points;
  code_points.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    utf8proc_int32_t decomposed[32];  // the longest decomposition (U+FDFA under NFKD) has 18
    int boundary_class = 0;
    auto count = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(next_code_point(text, pos)), decomposed, 32,
                                         options, &boundary_class);
    if (count < 0 || count > 32) fail("Unicode decomposition failed: {}", utf8proc_errmsg(count < 0 ? count : 0));
    code_points.insert(code_points.end(), decomposed, decomposed + count);
  }
  auto combining_class = [](utf8proc_int32_t cp) { return utf8proc_get_property(cp)->combining_class; };
  for (auto run = code_points.begin(); run != code_points.end();) {
    if (!combining_class(*run)) {
      ++run;
      continue;
    }
    auto run_end = std::find_if(run, code_points.end(), [&](utf8proc_int32_t cp) { return !combining_class(cp); });
    std::stable_sort(run, run_end, [&](auto a, auto b) { return combining_class(a) < combining_class(b); });
    run = run_end;
  }
  std::string ordered;
  ordered.reserve(text.size());
  for (utf8proc_int32_t cp : code_points) append_utf8(ordered, static_cast<char32_t>(cp));
  return ordered;
}

std::string utf8proc_normalize(std::string_view text, bool compatibility) {
  std::string ordered;
  if (text.size() > kLongMarkRun && has_long_mark_run(text)) {
    ordered = decompose_and_order_marks(text, compatibility);
    text = ordered;
  }
  auto options =
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | (compatibility ? UTF8PROC_COMPAT : 0));
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

void add_steps(const json& node, std::vector<Normalizer::Step>& steps) {
  if (node.is_null()) return;
  const std::string type = stage_type(node, "normalizer");
  if (type == "Sequence") {
    for (const json& child : sequence_children(node, "normalizers", "normalizer")) add_steps(child, steps);
  } else if (type == "Prepend") {
    steps.push_back([prefix = node.at("prepend").get<std::string>()](std::string text) {
      if (text.empty()) return text;  // as Hugging Face: nothing to prepend to
      return prefix + text;
    });
  } else if (type == "Replace") {
    steps.push_back([pattern = Pattern::from_json(node.at("pattern"), "Replace normalizer"),
                     content = node.at("content").get<std::string>()](std::string text) {
      return pattern.replace_all(text, content);
    });
  } else if (type == "NFC" || type == "NFKC") {
    steps.push_back(
        [compatibility = type == "NFKC"](std::string text) { return unicode_normalize(text, compatibility); });
  } else {
    fail("tokenizer.json: unsupported normalizer type '{}' (supported: Sequence, Prepend, Replace, NFC, NFKC)", type);
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
  for (const auto& step : steps_) result = step(std::move(result));
  return result;
}

}  // namespace troupe::tokenizer
