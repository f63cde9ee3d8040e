#pragma once
// The "decoder" stage of tokenizer.json: turns the tokens of some ids back into text. Supported:
// Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace. Each step maps the list of
// token strings to a new list (Hugging Face's decode_chain); the result is their concatenation.
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <vector>

namespace troupe::tokenizer {

class Decoder {
 public:
  // `json` is the "decoder" value (null: tokens are concatenated as they are).
  static Decoder from_json(const nlohmann::json& json);
  // One step of the chain: rewrites the list of token strings in place.
  using Step = std::function<void(std::vector<std::string>& tokens)>;

  // Always valid UTF-8: bytes that do not form characters become U+FFFD.
  std::string decode(std::vector<std::string> tokens) const;

 private:
  std::vector<Step> steps_;
};

}  // namespace troupe::tokenizer
