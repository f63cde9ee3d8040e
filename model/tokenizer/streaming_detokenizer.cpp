#include "model/tokenizer/streaming_detokenizer.hpp"

#include "model/tokenizer/utf8.hpp"

namespace troupe {

std::string StreamingDetokenizer::decode_window(size_t end) const {
  return tokenizer_.decode(std::span<const int>(window_.data(), end), skip_special_tokens_);
}

std::string StreamingDetokenizer::feed(int id) {
  window_.push_back(id);
  std::string before, now;
  try {
    before = decode_window(emitted_ids_);
    now = decode_window(window_.size());
  } catch (...) {
    window_.pop_back();  // an unknown id: refuse it and keep the stream usable
    throw;
  }
  // Hold back while nothing new appeared (e.g. a skipped special token) or a character is incomplete.
  if (now.size() <= before.size() || std::string_view(now).ends_with(tokenizer::kReplacementChar)) return {};
  // `before` is a prefix of `now` for every supported decoder; compare anyway rather than cut blindly.
  size_t common = 0;
  while (common < before.size() && before[common] == now[common]) ++common;
  // The window now starts at the ids just emitted: they give the next ids their context.
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(emitted_ids_));
  emitted_ids_ = window_.size();
  return now.substr(common);
}

std::string StreamingDetokenizer::finish() {
  std::string before = decode_window(emitted_ids_);
  std::string now = decode_window(window_.size());
  window_.clear();
  emitted_ids_ = 0;
  return now.size() > before.size() ? now.substr(before.size()) : std::string();
}

}  // namespace troupe
