#include "model/tokenizer/decoder.hpp"

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/pattern.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

// Maps byte-level symbols back to bytes across all tokens, then reads the bytes as UTF-8 with
// U+FFFD for what is not (Hugging Face uses from_utf8_lossy the same way).
void decode_byte_level(std::vector<std::string>& tokens) {
  const auto& alphabet = ByteLevelAlphabet::get();
  std::string bytes;
  for (const std::string& token : tokens) {
    size_t mark = bytes.size();
    bool all_symbols = true;
    for (size_t pos = 0; pos < token.size() && all_symbols;) {
      size_t length = valid_utf8_char_length(token, pos);
      int byte = length ? alphabet.byte_of(next_code_point(token, pos)) : -1;
      if (byte < 0)
        all_symbols = false;
      else
        bytes.push_back(static_cast<char>(byte));
    }
    if (!all_symbols) {  // not a byte-level token (e.g. an added token): keep its text
      bytes.resize(mark);
      bytes.append(token);
    }
  }
  tokens.assign(1, to_valid_utf8(bytes));
}

std::optional<int> parse_byte_token(const std::string& token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  int value = 0;
  for (char c : token.substr(3, 2)) {
    int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                            : -1;
    if (digit < 0) return std::nullopt;
    value = value * 16 + digit;
  }
  return value;
}

// Runs of <0xXX> tokens become the characters their bytes spell. Where the bytes are not valid
// UTF-8 each invalid byte becomes one U+FFFD, as in Hugging Face; unlike it, the valid characters
// of a partly valid run are kept, so that text once complete never changes as more ids arrive.
void decode_byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> decoded;
  std::string run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    for (size_t pos = 0; pos < run.size();) {
      size_t length = valid_utf8_char_length(run, pos);
      if (length)
        text.append(run, pos, length);
      else
        text.append(kReplacementChar);
      pos += std::max<size_t>(length, 1);
    }
    decoded.push_back(std::move(text));
    run.clear();
  };
  for (std::string& token : tokens) {
    if (auto byte = parse_byte_token(token)) {
      run.push_back(static_cast<char>(*byte));
    } else {
      flush();
      decoded.push_back(std::move(token));
    }
  }
  flush();
  tokens = std::move(decoded);
}

void add_steps(const json& node, std::vector<Decoder::Step>& steps) {
  if (node.is_null()) return;
  const std::string type = stage_type(node, "decoder");
  if (type == "Sequence") {
    for (const json& child : sequence_children(node, "decoders", "decoder")) add_steps(child, steps);
  } else if (type == "ByteLevel") {
    steps.push_back(decode_byte_level);
  } else if (type == "Replace") {
    steps.push_back([pattern = Pattern::from_json(node.at("pattern"), "Replace decoder"),
                     content = node.at("content").get<std::string>()](std::vector<std::string>& tokens) {
      for (std::string& token : tokens) token = pattern.replace_all(token, content);
    });
  } else if (type == "ByteFallback") {
    steps.push_back(decode_byte_fallback);
  } else if (type == "Fuse") {
    steps.push_back([](std::vector<std::string>& tokens) {
      std::string fused;
      for (const std::string& token : tokens) fused += token;
      tokens.assign(1, std::move(fused));
    });
  } else if (type == "Strip") {
    // Removes up to `start` leading and `stop` trailing copies of `content` from each token.
    steps.push_back([content = node.at("content").get<std::string>(), start = node.value("start", 0u),
                     stop = node.value("stop", 0u)](std::vector<std::string>& tokens) {
      if (content.empty()) return;
      for (std::string& token : tokens) {
        std::string_view view = token;
        for (size_t i = 0; i < start && view.starts_with(content); ++i) view.remove_prefix(content.size());
        for (size_t i = 0; i < stop && view.ends_with(content); ++i) view.remove_suffix(content.size());
        token = std::string(view);
      }
    });
  } else if (type == "Metaspace") {
    // Replacement character back to spaces; the first token loses the space Metaspace prepended.
    bool strip_first =
        node.contains("prepend_scheme") ? node["prepend_scheme"] != "never" : node.value("add_prefix_space", true);
    steps.push_back([replacement = node.value("replacement", std::string(kSentencePieceSpace)),
                     strip_first](std::vector<std::string>& tokens) {
      const Pattern pattern = Pattern::literal(replacement);
      for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = pattern.replace_all(tokens[i], " ");
        if (i == 0 && strip_first && tokens[i].starts_with(' ')) tokens[i].erase(0, 1);
      }
    });
  } else {
    fail(
        "tokenizer.json: unsupported decoder type '{}' (supported: Sequence, ByteLevel, Replace, ByteFallback, "
        "Fuse, Strip, Metaspace)",
        type);
  }
}

}  // namespace

Decoder Decoder::from_json(const json& node) {
  Decoder decoder;
  add_steps(node, decoder.steps_);
  return decoder;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  for (const auto& step : steps_) step(tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return to_valid_utf8(text);
}

}  // namespace troupe::tokenizer
