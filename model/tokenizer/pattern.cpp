#include "model/tokenizer/pattern.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"

namespace troupe::tokenizer {

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
};

namespace {

// Per-thread matching state: encode() is const and may run on many threads at once.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  // Long runs of whitespace backtrack deeply in `\s+(?!\S)`: give the JIT more than its 32 KiB.
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern) : compiled_(std::make_unique<Compiled>()) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                  &error_code, &error_offset, nullptr);
  if (!compiled_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    fail("regex '{}' does not compile at offset {}: {}", pattern, error_offset, reinterpret_cast<const char*>(message));
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (compiled_ && compiled_->code) pcre2_code_free(compiled_->code);
}

std::vector<Span> Regex::find_all(std::string_view text) const {
  std::vector<Span> matches;
  MatchState& state = match_state();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    // The caller guarantees valid UTF-8, so skip PCRE2's own check of the whole subject each call.
    int rc = compiled_->jit ? pcre2_jit_match(compiled_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                              state.data, state.context)
                            : pcre2_match(compiled_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data,
                                          state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("regex match failed at byte {} of a {}-byte text: {}", offset, text.size(),
           reinterpret_cast<const char*>(message));
    }
    // rc == 0 only says the one-pair ovector cannot hold the groups; the whole match is still there.
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      offset = end;
    } else {  // an empty match: step over one character
      offset = begin + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
  return matches;
}

Pattern Pattern::literal(std::string text) {
  Pattern pattern;
  pattern.literal_ = std::move(text);
  return pattern;
}

Pattern Pattern::from_json(const nlohmann::json& json, std::string_view where) {
  if (json.is_object() && json.contains("String") && json["String"].is_string())
    return literal(json["String"].get<std::string>());
  if (json.is_object() && json.contains("Regex") && json["Regex"].is_string()) {
    Pattern pattern;
    pattern.regex_ = std::make_shared<const Regex>(json["Regex"].get<std::string>());
    return pattern;
  }
  fail("{}: pattern {} is not {{\"String\": ...}} or {{\"Regex\": ...}}", where, describe(json));
}

std::vector<Span> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<Span> matches;
  if (literal_.empty()) return matches;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos)) {
    matches.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (auto [begin, end] : find_all(text)) {
    out.append(text.substr(copied, begin - copied));
    out.append(content);
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace troupe::tokenizer
