#include "model/tokenizer/utf8.hpp"

#include <algorithm>

namespace troupe::tokenizer {

int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

namespace {

// How far the bytes at text[pos] follow a well-formed UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF): `matched` bytes fit, `needed` would complete it.
struct Utf8Scan {
  size_t matched;
  size_t needed;
};

Utf8Scan scan_utf8(std::string_view text, size_t pos) {
  auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) return {1, 1};
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  size_t needed = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {0, 1};
  }
  size_t matched = 1;
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  if (pos + 1 < text.size() && byte(1) >= low && byte(1) <= high) {
    matched = 2;
    while (matched < needed && pos + matched < text.size() && (byte(matched) & 0xC0) == 0x80) ++matched;
  }
  return {matched, needed};
}

}  // namespace

size_t valid_utf8_char_length(std::string_view text, size_t pos) {
  Utf8Scan scan = scan_utf8(text, pos);
  return scan.matched == scan.needed ? scan.needed : 0;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    size_t length = valid_utf8_char_length(text, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

std::string to_valid_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  for (size_t pos = 0; pos < bytes.size();) {
    size_t length = valid_utf8_char_length(bytes, pos);
    if (length > 0) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else {
      out.append(kReplacementChar);
      pos += std::max<size_t>(1, scan_utf8(bytes, pos).matched);  // one U+FFFD per maximal subpart
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t next_code_point(std::string_view text, size_t& pos) {
  auto lead = static_cast<unsigned char>(text[pos]);
  int length = utf8_sequence_length(lead);
  if (pos + length > text.size()) length = 1;
  char32_t cp = length == 1 ? lead : lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  pos += length;
  return cp;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_.fill(-1);
  // Printable Latin-1 bytes stand for themselves; the rest are shifted to U+0100 upwards (GPT-2).
  auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
  char32_t next_shifted = 0x100;
  for (int b = 0; b < 256; ++b) {
    char32_t cp = printable(b) ? char32_t(b) : next_shifted++;
    append_utf8(symbols_[b], cp);
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

std::string ByteLevelAlphabet::encode(std::string_view raw) const {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out.append(symbols_[b]);
  return out;
}

}  // namespace troupe::tokenizer
