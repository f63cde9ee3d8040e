#pragma once
// UTF-8 helpers shared by the tokenizer stages, and the GPT-2 "byte-level" alphabet that maps each
// byte to a printable code point so byte strings can live in a JSON vocabulary.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";     // U+FFFD
inline constexpr std::string_view kSentencePieceSpace = "\xE2\x96\x81";  // U+2581, stands for a space

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for stray bytes).
int utf8_sequence_length(unsigned char lead);

// Bytes of the longest valid UTF-8 sequence starting at text[pos] (0 when it is invalid or cut short).
size_t valid_utf8_char_length(std::string_view text, size_t pos);

bool is_valid_utf8(std::string_view text);

// Replaces each maximal invalid subsequence with U+FFFD (the Unicode "maximal subpart" practice, as
// Rust's String::from_utf8_lossy and Python's errors="replace" do). Valid text is returned unchanged.
std::string to_valid_utf8(std::string_view bytes);

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t code_point);

// The byte-level (GPT-2) alphabet: byte <-> code point, both ways.
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();
  // The UTF-8 text of the code point standing for `byte`.
  std::string_view symbol(uint8_t byte) const { return symbols_[byte]; }
  // The byte a code point stands for, or -1 when it is not in the alphabet.
  int byte_of(char32_t code_point) const { return code_point < byte_of_.size() ? byte_of_[code_point] : -1; }
  // Maps every byte of `raw` to its symbol.
  std::string encode(std::string_view raw) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> symbols_;
  std::array<int16_t, 324> byte_of_{};  // the alphabet's largest code point is U+0143
};

// Decodes the code point at text[pos] (which must be valid UTF-8) and advances pos.
char32_t next_code_point(std::string_view text, size_t& pos);

}  // namespace troupe::tokenizer
