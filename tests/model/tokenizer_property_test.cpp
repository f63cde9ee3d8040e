// Seeded random round trips: random Unicode text decodes back to itself (NFC for qwen3), random
// bytes (invalid UTF-8 included) encode without error to what their U+FFFD-repaired text encodes
// to, and streaming decode equals whole decode for random ids.
#include <doctest/doctest.h>

#include <utf8proc.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "kernels/error.hpp"
#include "model/tokenizer/normalizer.hpp"
#include "model/tokenizer/streaming_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

constexpr int kCases = 300;

// Code points from the ranges real text mixes: ASCII, Latin-1 and accents, combining marks,
// whitespace, CJK, Hangul, emoji (with skin-tone modifiers and ZWJ), and astral-plane letters.
std::string random_unicode(std::mt19937& rng) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},       {0x20, 0x7E},       {0x20, 0x7E},     {0x09, 0x0D},      {0xA0, 0x17F},    {0x300, 0x36F},
      {0x391, 0x3C9},     {0x410, 0x44F},     {0x2000, 0x206F}, {0x3040, 0x30FF},  {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0x1F300, 0x1F64F}, {0x1F3FB, 0x1F3FF}, {0x200D, 0x200D}, {0x10400, 0x1044F}};
  std::uniform_int_distribution<size_t> length(0, 40), pick(0, ranges.size() - 1);
  std::string text;
  for (size_t i = 0, n = length(rng); i < n; ++i) {
    auto [low, high] = ranges[pick(rng)];
    char32_t cp = std::uniform_int_distribution<char32_t>(low, high)(rng);
    if (cp == 0x2581) cp = 'x';  // SentencePiece's space marker decodes to a space by design
    tokenizer::append_utf8(text, cp);
  }
  return text;
}

std::string random_bytes(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(0, 24), byte(0, 255);
  std::string bytes;
  for (int i = 0, n = length(rng); i < n; ++i) bytes.push_back(static_cast<char>(byte(rng)));
  return bytes;
}

std::string stream_decode(const Tokenizer& tokenizer, const std::vector<int>& ids) {
  StreamingDetokenizer stream(tokenizer);
  std::string text;
  for (int id : ids) {
    std::string piece = stream.feed(id);
    CHECK(tokenizer::is_valid_utf8(piece));
    text += piece;
  }
  return text + stream.finish();
}

void check_round_trips(const std::filesystem::path& dir, bool nfc) {
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  std::mt19937 rng(20261130);
  for (int i = 0; i < kCases; ++i) {
    std::string text = random_unicode(rng);
    CAPTURE(text);
    std::vector<int> ids = tokenizer.encode(text);
    std::string expected = nfc ? tokenizer::unicode_normalize(text, false) : text;
    CHECK(tokenizer.decode(ids) == expected);
    CHECK(stream_decode(tokenizer, ids) == expected);
  }
  for (int i = 0; i < kCases; ++i) {
    std::string bytes = random_bytes(rng);
    CAPTURE(bytes);
    std::string repaired = tokenizer::to_valid_utf8(bytes);
    CHECK(tokenizer::is_valid_utf8(repaired));
    std::vector<int> ids = tokenizer.encode(bytes);
    CHECK(ids == tokenizer.encode(repaired));
    CHECK(tokenizer.decode(ids) == (nfc ? tokenizer::unicode_normalize(repaired, false) : repaired));
  }
  // Arbitrary ids, byte tokens that do not form characters included: streaming still agrees.
  std::uniform_int_distribution<int> any_id(0, tokenizer.vocab_size() - 1), length(0, 12);
  for (int i = 0; i < kCases; ++i) {
    std::vector<int> ids;
    for (int n = length(rng); n > 0; --n) ids.push_back(any_id(rng));
    CAPTURE(ids);
    std::string whole = tokenizer.decode(ids);
    CHECK(tokenizer::is_valid_utf8(whole));
    CHECK(stream_decode(tokenizer, ids) == whole);
  }
}

}  // namespace

TEST_CASE("llama3: random text round-trips, invalid UTF-8 is replaced, streaming agrees") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/llama3");
  check_round_trips(dir, false);
}

TEST_CASE("qwen3: random text round-trips to its NFC form, invalid UTF-8 is replaced, streaming agrees") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/qwen3");
  check_round_trips(dir, true);
}

TEST_CASE("spm32k: random text round-trips, invalid UTF-8 is replaced, streaming agrees") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/spm32k");
  check_round_trips(dir, false);
}

TEST_CASE("invalid UTF-8 becomes one U+FFFD per maximal invalid subsequence") {
  using tokenizer::to_valid_utf8;
  const std::string fffd(tokenizer::kReplacementChar);
  CHECK(to_valid_utf8("a\xFF"
                      "b") == "a" + fffd + "b");
  CHECK(to_valid_utf8("\xE6\x9D") == fffd);  // a cut-short character
  CHECK(to_valid_utf8("\xE6\x9D"
                      "x") == fffd + "x");
  CHECK(to_valid_utf8("\xC0\xAF") == fffd + fffd);             // overlong: each byte on its own
  CHECK(to_valid_utf8("\xED\xA0\x80") == fffd + fffd + fffd);  // a UTF-16 surrogate
  CHECK(to_valid_utf8("\xF0\x9F\x99\x82") == "\xF0\x9F\x99\x82");
}

TEST_CASE("NFC and NFKC of only the stretches that may change equal the library's whole-text result") {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string text = random_unicode(rng);
    for (bool compatibility : {false, true}) {
      auto* whole = compatibility ? utf8proc_NFKC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()))
                                  : utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
      REQUIRE(whole != nullptr);
      CAPTURE(text);
      CHECK(tokenizer::unicode_normalize(text, compatibility) == reinterpret_cast<const char*>(whole));
      std::free(whole);
    }
  }
}

TEST_CASE("long runs of combining marks normalize like the library does, in linear time") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<char32_t> mark(0x300, 0x36F);
  for (int i = 0; i < 200; ++i) {
    std::string text = "e";
    for (int n = 0; n < 40 + i; ++n) tokenizer::append_utf8(text, mark(rng));
    text += "\xC3\xA9\xEF\xAC\x81x";  // é and the ligature fi (NFKC splits it) after the run
    for (bool compatibility : {false, true}) {
      auto* whole = compatibility ? utf8proc_NFKC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()))
                                  : utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
      CAPTURE(text);
      CHECK(tokenizer::unicode_normalize(text, compatibility) == reinterpret_cast<const char*>(whole));
      std::free(whole);
    }
  }
  std::string marks;  // 200 KB of alternating classes 230 / 220: minutes with a quadratic sort
  for (int i = 0; i < 100000; ++i) marks += (i % 2) ? "\xCC\x81" : "\xCC\xA3";
  auto start = std::chrono::steady_clock::now();
  CHECK(tokenizer::unicode_normalize("e" + marks, false).size() > marks.size() / 2);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("a streaming detokenizer refuses an unknown id and carries on") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/spm32k");
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  std::vector<int> ids = tokenizer.encode("Hello world");
  StreamingDetokenizer stream(tokenizer);
  std::string text = stream.feed(ids[0]);
  CHECK_THROWS_AS(stream.feed(tokenizer.vocab_size()), Error);
  for (size_t i = 1; i < ids.size(); ++i) text += stream.feed(ids[i]);
  CHECK(text + stream.finish() == "Hello world");
}
