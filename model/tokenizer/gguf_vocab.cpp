#include "model/tokenizer/gguf_vocab.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "kernels/error.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The Split pattern of a byte-level BPE tokenizer, by tokenizer.ggml.pre (llama.cpp's names).
std::string split_pattern(const std::string& pre, const std::string& file) {
  if (pre == "llama-bpe" || pre == "llama3" || pre == "smaug-bpe")
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (pre == "qwen2")
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (pre == "default" || pre == "gpt-2" || pre.empty())
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  fail("{}: tokenizer.ggml.pre '{}' is not supported (llama-bpe, qwen2, default)", file, pre);
}

std::optional<int64_t> token_id(const GgufFile& f, const std::string& key, size_t vocab) {
  const auto* v = f.find(key);
  if (!v) return std::nullopt;
  const int64_t id = v->as_int(key);
  if (id < 0 || id >= int64_t(vocab)) {
    if (id == -1) return std::nullopt;  // llama.cpp writes -1 for "none"
    fail("{}: {} is {}, outside the vocabulary of {} tokens", f.path().string(), key, id, vocab);
  }
  return id;
}

bool flag(const GgufFile& f, const std::string& key, bool fallback) {
  const auto* v = f.find(key);
  return v ? v->as_bool(key) : fallback;
}

// SentencePiece-style merges from scores, as transformers' SentencePieceExtractor derives them:
// every split of a token into two vocabulary pieces is a merge ranked by the token's score (higher
// first); splits of one token are ordered by the pieces' ids.
json merges_from_scores(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                        const std::vector<int64_t>& types) {
  std::unordered_map<std::string, int64_t> id;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == kNormal || types[i] == kUserDefined || types[i] == kUnused) id.emplace(tokens[i], int64_t(i));
  struct Merge {
    float score;
    int64_t left, right;
    std::string a, b;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != kNormal) continue;
    const std::string& t = tokens[i];
    std::vector<Merge> local;
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      auto l = id.find(t.substr(0, cut)), r = id.find(t.substr(cut));
      if (l != id.end() && r != id.end()) local.push_back({scores[i], l->second, r->second, l->first, r->first});
    }
    std::sort(local.begin(), local.end(),
              [](const Merge& x, const Merge& y) { return std::tie(x.left, x.right) < std::tie(y.left, y.right); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& x, const Merge& y) { return x.score > y.score; });
  json out = json::array();
  for (const auto& m : merges) out.push_back(json::array({m.a, m.b}));
  return out;
}

}  // namespace

std::optional<GgufTokenizerJson> gguf_tokenizer_json(const GgufFile& f) {
  const std::string file = f.path().string();
  const auto* model_value = f.find("tokenizer.ggml.model");
  if (!model_value) return std::nullopt;
  const std::string model = model_value->as_string("tokenizer.ggml.model");
  if (model != "llama" && model != "gpt2")
    fail("{}: tokenizer.ggml.model '{}' is not supported (llama: SentencePiece-style BPE; gpt2: byte-level BPE)", file,
         model);
  const auto tokens = f.get("tokenizer.ggml.tokens").strings("tokenizer.ggml.tokens");
  if (tokens.empty()) fail("{}: tokenizer.ggml.tokens is empty", file);
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (const auto* v = f.find("tokenizer.ggml.token_type")) types = v->ints("tokenizer.ggml.token_type");
  if (types.size() != tokens.size())
    fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file, types.size(), tokens.size());

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (vocab.contains(tokens[i])) {
      if (types[i] == kControl || types[i] == kUserDefined || types[i] == kUnused) continue;  // a duplicate placeholder
      fail("{}: token '{}' appears twice in tokenizer.ggml.tokens (ids {} and {})", file, tokens[i],
           vocab[tokens[i]].get<int64_t>(), i);
    }
    vocab[tokens[i]] = int64_t(i);
    if (types[i] == kControl || types[i] == kUserDefined || types[i] == kUnknown)
      added.push_back({{"id", int64_t(i)},
                       {"content", tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", types[i] != kUserDefined}});
  }
  const auto bos = token_id(f, "tokenizer.ggml.bos_token_id", tokens.size());
  const auto eos = token_id(f, "tokenizer.ggml.eos_token_id", tokens.size());
  const auto unk = token_id(f, "tokenizer.ggml.unknown_token_id", tokens.size());

  json tok = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  json config = json::object();
  if (model == "llama") {
    std::vector<float> scores(tokens.size(), 0.0f);
    if (const auto* v = f.find("tokenizer.ggml.scores")) scores = v->floats("tokenizer.ggml.scores");
    if (scores.size() != tokens.size())
      fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", file, scores.size(), tokens.size());
    json normalizers = json::array();
    if (flag(f, "tokenizer.ggml.add_space_prefix", true))
      normalizers.push_back({{"type", "Prepend"}, {"prepend", "\u2581"}});
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}});
    tok["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
    tok["pre_tokenizer"] = nullptr;
    tok["post_processor"] = nullptr;
    json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                 json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
    if (flag(f, "tokenizer.ggml.add_space_prefix", true))
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tok["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    tok["model"] = {{"type", "BPE"},
                    {"dropout", nullptr},
                    {"unk_token", unk ? json(tokens[size_t(*unk)]) : json(nullptr)},
                    {"continuing_subword_prefix", nullptr},
                    {"end_of_word_suffix", nullptr},
                    {"fuse_unk", true},
                    {"byte_fallback", true},
                    {"ignore_merges", false},
                    {"vocab", vocab},
                    {"merges", merges_from_scores(tokens, scores, types)}};
    config["add_bos_token"] = flag(f, "tokenizer.ggml.add_bos_token", true);
  } else {
    const std::string pre =
        f.find("tokenizer.ggml.pre") ? f.get("tokenizer.ggml.pre").as_string("tokenizer.ggml.pre") : "default";
    const auto merges = f.get("tokenizer.ggml.merges").strings("tokenizer.ggml.merges");
    json merge_list = json::array();
    for (const auto& m : merges) {
      const auto space = m.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == m.size())
        fail("{}: tokenizer.ggml.merges entry '{}' is not two tokens separated by a space", file, m);
      merge_list.push_back(json::array({m.substr(0, space), m.substr(space + 1)}));
    }
    if (pre == "qwen2")
      tok["normalizer"] = {{"type", "NFC"}};
    else
      tok["normalizer"] = nullptr;
    tok["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers", json::array({json{{"type", "Split"},
                                                                {"pattern", {{"Regex", split_pattern(pre, file)}}},
                                                                {"behavior", "Isolated"},
                                                                {"invert", false}},
                                                           json{{"type", "ByteLevel"},
                                                                {"add_prefix_space", false},
                                                                {"trim_offsets", false},
                                                                {"use_regex", false}}})}};
    tok["post_processor"] = nullptr;
    tok["decoder"] = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    tok["model"] = {{"type", "BPE"},
                    {"dropout", nullptr},
                    {"unk_token", nullptr},
                    {"continuing_subword_prefix", nullptr},
                    {"end_of_word_suffix", nullptr},
                    {"fuse_unk", false},
                    {"byte_fallback", false},
                    {"ignore_merges", pre == "llama-bpe" || pre == "llama3"},
                    {"vocab", vocab},
                    {"merges", merge_list}};
    config["add_bos_token"] = flag(f, "tokenizer.ggml.add_bos_token", false);
  }
  config["add_eos_token"] = flag(f, "tokenizer.ggml.add_eos_token", false);
  if (bos) config["bos_token"] = tokens[size_t(*bos)];
  if (eos) config["eos_token"] = tokens[size_t(*eos)];
  if (unk) config["unk_token"] = tokens[size_t(*unk)];
  if (const auto* v = f.find("tokenizer.chat_template"))
    config["chat_template"] = v->as_string("tokenizer.chat_template");
  try {
    return GgufTokenizerJson{tok.dump(), config.dump()};
  } catch (const json::exception& e) {  // a token that is not valid UTF-8
    fail("{}: the tokenizer metadata holds a string that is not valid UTF-8 ({})", file, e.what());
  }
}

namespace {

json read_json_file(const std::filesystem::path& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (required) fail("cannot open {}", path.string());
    return json::object();
  }
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", path.string(), e.what());
  }
}

// The content of a tokenizer_config.json token entry ("<s>" or {"content": "<s>"}).
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const std::filesystem::path& dir) {
  const auto tokenizer_path = dir / "tokenizer.json";
  const json tok = read_json_file(tokenizer_path, true);
  const json config = read_json_file(dir / "tokenizer_config.json", false);
  const std::string where = tokenizer_path.string();
  if (!tok.contains("model") || tok["model"].value("type", "") != "BPE")
    fail("{}: only BPE tokenizers convert to GGUF", where);
  const json& model = tok["model"];
  const bool byte_fallback = model.value("byte_fallback", false);
  // Tokens by id: the BPE vocabulary, then added tokens.
  std::map<int64_t, std::pair<std::string, int64_t>> by_id;  // id -> (token, type)
  for (const auto& [token, id] : model.at("vocab").items()) by_id[id.get<int64_t>()] = {token, kNormal};
  std::set<int64_t> special;
  if (tok.contains("added_tokens"))
    for (const auto& a : tok["added_tokens"]) {
      const int64_t id = a.at("id").get<int64_t>();
      by_id[id] = {a.at("content").get<std::string>(), a.value("special", false) ? kControl : kUserDefined};
    }
  if (by_id.empty() || by_id.begin()->first != 0 || by_id.rbegin()->first != int64_t(by_id.size()) - 1)
    fail("{}: token ids are not 0..n-1 without holes; GGUF needs a dense vocabulary", where);
  std::vector<GgufValue::Scalar> tokens, scores, types;
  auto id_of = [&](const std::optional<std::string>& token) -> std::optional<int64_t> {
    if (!token) return std::nullopt;
    for (const auto& [id, entry] : by_id)
      if (entry.first == *token) return id;
    return std::nullopt;
  };
  const auto unk = id_of(model.contains("unk_token") && model["unk_token"].is_string()
                             ? std::optional<std::string>(model["unk_token"].get<std::string>())
                             : config_token(config, "unk_token"));
  for (auto& [id, entry] : by_id) {
    auto& [token, type] = entry;
    if (byte_fallback && token.size() == 6 && token.starts_with("<0x") && token.ends_with(">")) type = kByte;
    if (unk && id == *unk) type = kUnknown;
    tokens.push_back(token);
    scores.push_back(double(-id));
    types.push_back(int64_t(type));
  }
  std::vector<std::pair<std::string, GgufValue>> meta;
  if (byte_fallback) {
    meta.emplace_back("tokenizer.ggml.model", GgufValue::string("llama"));
  } else {
    // Byte-level BPE: the split pattern names the pre-tokenizer.
    const std::string dump = tok.contains("pre_tokenizer") ? tok["pre_tokenizer"].dump() : "";
    std::string pre;
    for (const char* name : {"llama-bpe", "qwen2", "default"})
      if (dump.find(json(split_pattern(name, where)).dump()) != std::string::npos) pre = name;
    if (pre.empty())
      fail("{}: a byte-level BPE whose split pattern is not llama-bpe's, qwen2's or GPT-2's cannot be named in GGUF",
           where);
    meta.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
    meta.emplace_back("tokenizer.ggml.pre", GgufValue::string(pre));
  }
  meta.emplace_back("tokenizer.ggml.tokens", GgufValue::array(GgufType::String, std::move(tokens)));
  if (byte_fallback) meta.emplace_back("tokenizer.ggml.scores", GgufValue::array(GgufType::F32, std::move(scores)));
  meta.emplace_back("tokenizer.ggml.token_type", GgufValue::array(GgufType::I32, std::move(types)));
  if (!byte_fallback) {
    std::vector<GgufValue::Scalar> merges;
    for (const auto& m : model.at("merges"))
      merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
    meta.emplace_back("tokenizer.ggml.merges", GgufValue::array(GgufType::String, std::move(merges)));
  }
  if (auto id = id_of(config_token(config, "bos_token")))
    meta.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(*id)));
  if (auto id = id_of(config_token(config, "eos_token")))
    meta.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(*id)));
  if (unk) meta.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::u32(uint32_t(*unk)));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
    meta.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(config["add_bos_token"].get<bool>()));
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean())
    meta.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(config["add_eos_token"].get<bool>()));
  if (config.contains("chat_template") && config["chat_template"].is_string())
    meta.emplace_back("tokenizer.chat_template", GgufValue::string(config["chat_template"].get<std::string>()));
  return meta;
}

}  // namespace troupe
