// The pipeline stages on tiny hand-made tokenizer.json files (the stages the reference tokenizers
// do not use), and clear errors for malformed files.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

using namespace troupe;
using nlohmann::json;

namespace {

// A character-level BPE over a few letters; the callers add stages.
json tiny_tokenizer() {
  json vocab = {{"<unk>", 0},
                {"<s>", 1},
                {"</s>", 2},
                {"a", 3},
                {"b", 4},
                {"c", 5},
                {"ab", 6},
                {"abc", 7},
                {"1", 8},
                {"2", 9},
                {"12", 10},
                {"\xE2\x96\x81", 11},
                {"\xE2\x96\x81"
                 "a",
                 12},
                {"<0xC3>", 13},
                {"<0xA9>", 14},
                {"-", 15}};
  return {{"model",
           {{"type", "BPE"},
            {"vocab", vocab},
            {"merges", json::array({"a b", json::array({"ab", "c"}), "1 2", "\xE2\x96\x81 a"})},
            {"unk_token", "<unk>"},
            {"byte_fallback", true},
            {"fuse_unk", true}}},
          {"added_tokens", json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}}})}};
}

Tokenizer load(const json& tokenizer_json, const json& config = nullptr) {
  return Tokenizer::from_json(tokenizer_json.dump(), config.is_null() ? std::string() : config.dump());
}

using Ids = std::vector<int>;

}  // namespace

TEST_CASE("merges apply by rank, byte fallback and fused unk fill the gaps") {
  Tokenizer tokenizer = load(tiny_tokenizer());
  CHECK(tokenizer.encode("abc") == Ids{7});
  CHECK(tokenizer.encode("abab") == Ids{6, 6});
  CHECK(tokenizer.encode("\xC3\xA9") == Ids{13, 14});       // é is not in the vocab: its bytes are
  CHECK(tokenizer.encode("a\xE2\x82\xACzz") == Ids{3, 0});  // € z z have no byte tokens: one fused unk
  CHECK(tokenizer.encode("a<s>b", true) == Ids{3, 1, 4});
  CHECK(tokenizer.decode(Ids{3, 1, 4}, true) == "ab");
  CHECK(tokenizer.vocab_size() == 16);
}

TEST_CASE("Split behaviours and Digits cut pieces as Hugging Face does") {
  auto pieces_of = [](json pre_tokenizer, const std::string& text) {
    json spec = tiny_tokenizer();
    spec["pre_tokenizer"] = pre_tokenizer;
    return load(spec).encode(text);
  };
  auto split = [](const char* behavior, bool invert = false) {
    return json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
  };
  CHECK(pieces_of(split("Removed"), "ab-c") == Ids{6, 5});
  CHECK(pieces_of(split("Isolated"), "ab-c") == Ids{6, 15, 5});
  CHECK(pieces_of(split("MergedWithPrevious"), "a-b") == Ids{3, 15, 4});
  CHECK(pieces_of(split("Removed", true), "ab-c") == Ids{15});
  // Digits: "12" stays one piece (merged) unless individual_digits cuts it in two.
  CHECK(pieces_of(json{{"type", "Digits"}, {"individual_digits", false}}, "12a") == Ids{10, 3});
  CHECK(pieces_of(json{{"type", "Digits"}, {"individual_digits", true}}, "12a") == Ids{8, 9, 3});
  // Contiguous keeps runs of matches together; "ab" then survives the cut before "c".
  json regex_split = {{"type", "Split"}, {"pattern", {{"Regex", "[ab]"}}}, {"behavior", "Contiguous"}};
  CHECK(pieces_of(regex_split, "abc") == Ids{6, 5});
}

TEST_CASE("Metaspace pre-tokenizer and decoder") {
  json spec = tiny_tokenizer();
  spec["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}};
  spec["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}};
  Tokenizer tokenizer = load(spec);
  CHECK(tokenizer.encode("a a") == Ids{12, 12});
  CHECK(tokenizer.decode(Ids{12, 12}) == "a a");
}

TEST_CASE("tokenizer_config add_bos_token / add_eos_token decide the special tokens") {
  json config = {
      {"bos_token", "<s>"}, {"eos_token", {{"content", "</s>"}}}, {"add_bos_token", true}, {"add_eos_token", true}};
  Tokenizer tokenizer = load(tiny_tokenizer(), config);
  CHECK(tokenizer.bos_id() == 1);
  CHECK(tokenizer.eos_id() == 2);
  CHECK(tokenizer.encode("ab", true) == Ids{1, 6, 2});
  CHECK(tokenizer.encode("ab", false) == Ids{6});
}

TEST_CASE("malformed tokenizer files are clear errors") {
  auto error_of = [](const std::string& tokenizer_json) -> std::string {
    try {
      Tokenizer::from_json(tokenizer_json);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(error_of("{not json").find("tokenizer.json is not valid JSON") != std::string::npos);
  CHECK(error_of("{}").find("no \"model\"") != std::string::npos);
  json spec = tiny_tokenizer();
  spec["normalizer"] = {{"type", "Lowercase"}};
  CHECK(error_of(spec.dump()).find("unsupported normalizer type 'Lowercase'") != std::string::npos);
  spec = tiny_tokenizer();
  spec["model"]["merges"] = json::array({"a zz"});
  CHECK(error_of(spec.dump()).find("merge #0 'a zz' uses a token missing from the vocab") != std::string::npos);
  spec = tiny_tokenizer();
  spec["model"]["type"] = "Unigram";
  CHECK(error_of(spec.dump()).find("unsupported model type 'Unigram'") != std::string::npos);
  spec = tiny_tokenizer();
  spec["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK(error_of(spec.dump()).find("regex '(unclosed' does not compile") != std::string::npos);
  spec = tiny_tokenizer();
  spec["model"]["vocab"] = 7;
  CHECK(error_of(spec.dump()).find("no \"vocab\" object") != std::string::npos);
  spec = tiny_tokenizer();
  spec["decoder"] = {{"type", "Strip"}, {"content", 5}};
  CHECK(error_of(spec.dump()).find("unexpected value") != std::string::npos);
  spec = tiny_tokenizer();
  json nested = {{"type", "NFC"}};
  for (int level = 0; level < 100; ++level) nested = {{"type", "Sequence"}, {"normalizers", json::array({nested})}};
  spec["normalizer"] = nested;
  CHECK(error_of(spec.dump()).find("\"normalizer\" nests 201 levels deep") != std::string::npos);
  CHECK_THROWS_WITH_AS(Tokenizer::from_dir("/nonexistent/model"), doctest::Contains("tokenizer.json"), Error);
  CHECK_THROWS_WITH_AS(load(tiny_tokenizer()).decode(Ids{99}), doctest::Contains("token id 99"), Error);
}
