// libFuzzer target: arbitrary bytes as tokenizer.json. Loading must either succeed or throw
// troupe::Error (never crash, hang or throw anything else); a loaded tokenizer must then encode,
// decode and stream a few texts without crashing. Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <string_view>

#include "kernels/error.hpp"
#include "model/tokenizer/streaming_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    troupe::Tokenizer tokenizer = troupe::Tokenizer::from_json(json);
    for (std::string_view text : {"Hello world", "  a\n\n12345 \xE6\x9D\xB1\xF0\x9F\x99\x82", "\xFF\xFE<s>x"}) {
      std::vector<int> ids = tokenizer.encode(text, true);
      std::string decoded = tokenizer.decode(ids);
      troupe::StreamingDetokenizer stream(tokenizer);
      std::string streamed;
      for (int id : ids) streamed += stream.feed(id);
      streamed += stream.finish();
      if (streamed != decoded) __builtin_trap();  // streaming must always equal whole decode
    }
  } catch (const troupe::Error&) {
    // A clear error is the expected outcome for malformed files.
  }
  return 0;
}
