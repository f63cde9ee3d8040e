#include "model/tokenizer/tokenizer.hpp"

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/error.hpp"
#include "model/gguf_checkpoint.hpp"
#include "model/tokenizer/gguf_vocab.hpp"
#include "model/tokenizer/json_fields.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe {

using nlohmann::json;

// Pre-tokens repeat (" the", ","): remembering their ids skips the BPE merges for most of a text.
struct Tokenizer::EncodeCache {
  static constexpr size_t kMaxEntries = 1 << 18;
  static constexpr size_t kMaxPieceBytes = 128;  // longer pieces are rare and not worth keeping
  std::mutex mutex;
  tokenizer::StringMap<std::vector<int>> ids_of_piece;
};

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

json parse_json(std::string_view text, std::string_view what) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) fail("{} is not valid JSON", what);
  if (!parsed.is_object()) fail("{} is not a JSON object", what);
  return parsed;
}

// tokenizer_config.json names tokens as "<s>" or as {"content": "<s>", ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Tokenizer::Tokenizer() : cache_(std::make_shared<EncodeCache>()) {}

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
  const auto tokenizer_path = dir / "tokenizer.json";
  const auto config_path = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(tokenizer_path))
    fail("{} does not exist (expected a Hugging Face tokenizer.json in {})", tokenizer_path.string(), dir.string());
  std::string config = std::filesystem::exists(config_path) ? read_file(config_path) : std::string();
  try {
    return from_json(read_file(tokenizer_path), config);
  } catch (const Error& e) {
    fail("{}: {}", dir.string(), e.what());
  }
}

std::optional<Tokenizer> Tokenizer::from_model(const std::filesystem::path& model) {
  if (auto gguf = find_gguf_model(model)) {
    auto files = gguf_tokenizer_json(GgufFile(*gguf));
    if (!files) return std::nullopt;
    return from_json(files->tokenizer_json, files->tokenizer_config_json);
  }
  if (std::filesystem::exists(model / "tokenizer.json")) return from_dir(model);
  return std::nullopt;
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json) {
  const json root = parse_json(tokenizer_json, "tokenizer.json");
  const json config = config_json.empty() ? json::object() : parse_json(config_json, "tokenizer_config.json");
  if (!root.contains("model")) fail("tokenizer.json has no \"model\"");
  auto section = [&](const char* key) -> const json& {
    static const json null_json;
    return root.contains(key) ? root[key] : null_json;
  };

  // The stages nest (Sequence in Sequence) and are read recursively: refuse absurd nesting.
  constexpr size_t kMaxStageNesting = 64;
  for (const char* key : {"normalizer", "pre_tokenizer", "decoder", "post_processor"})
    if (size_t depth = tokenizer::nesting_depth(section(key)); depth > kMaxStageNesting)
      fail("tokenizer.json: \"{}\" nests {} levels deep (at most {} expected)", key, depth, kMaxStageNesting);

  Tokenizer tokenizer;
  try {
    tokenizer.added_tokens_ = tokenizer::AddedTokens::from_json(section("added_tokens"));
    tokenizer.normalizer_ = tokenizer::Normalizer::from_json(section("normalizer"));
    tokenizer.pre_tokenizer_ = tokenizer::PreTokenizer::from_json(section("pre_tokenizer"));
    tokenizer.model_ = tokenizer::BpeModel::from_json(root["model"]);
    tokenizer.decoder_ = tokenizer::Decoder::from_json(section("decoder"));
    auto lookup = [&tokenizer](std::string_view token) { return tokenizer.token_to_id(token); };

    auto resolve = [&](const char* key) -> std::optional<int> {
      auto name = config_token(config, key);
      if (!name) return std::nullopt;
      auto id = lookup(*name);
      if (!id) fail("tokenizer_config.json: {} '{}' is not a known token", key, *name);
      return id;
    };
    tokenizer.bos_id_ = resolve("bos_token");
    tokenizer.eos_id_ = resolve("eos_token");

    bool add_bos = config.value("add_bos_token", false), add_eos = config.value("add_eos_token", false);
    if (config.contains("add_bos_token") || config.contains("add_eos_token")) {
      if ((add_bos && !tokenizer.bos_id_) || (add_eos && !tokenizer.eos_id_))
        fail("tokenizer_config.json: add_bos_token/add_eos_token is true but that token is not set");
      std::vector<int> prefix, suffix;
      if (add_bos) prefix.push_back(*tokenizer.bos_id_);
      if (add_eos) suffix.push_back(*tokenizer.eos_id_);
      tokenizer.post_processor_ = tokenizer::PostProcessor::around(std::move(prefix), std::move(suffix));
    } else {
      tokenizer.post_processor_ = tokenizer::PostProcessor::from_json(section("post_processor"), lookup);
    }
  } catch (const json::exception& e) {
    // A field of the wrong JSON type deep inside a section.
    fail("tokenizer.json or tokenizer_config.json has an unexpected value: {}", e.what());
  }
  return tokenizer;
}

void Tokenizer::encode_piece(std::string_view piece, bool byte_level, std::vector<int>& ids) const {
  if (piece.size() > EncodeCache::kMaxPieceBytes) {
    model_.encode_word(piece, byte_level, ids);
    return;
  }
  {
    std::lock_guard lock(cache_->mutex);
    auto found = cache_->ids_of_piece.find(piece);
    if (found != cache_->ids_of_piece.end()) {
      ids.insert(ids.end(), found->second.begin(), found->second.end());
      return;
    }
  }
  size_t first = ids.size();
  model_.encode_word(piece, byte_level, ids);
  std::lock_guard lock(cache_->mutex);
  if (cache_->ids_of_piece.size() >= EncodeCache::kMaxEntries) cache_->ids_of_piece.clear();
  cache_->ids_of_piece.emplace(std::string(piece), std::vector<int>(ids.begin() + first, ids.end()));
}

void Tokenizer::encode_plain_text(std::string_view text, std::vector<int>& ids) const {
  std::string normalized;
  if (!normalizer_.is_identity()) {
    normalized = normalizer_.normalize(text);
    text = normalized;
  }
  tokenizer::PreTokenized pieces = pre_tokenizer_.split(text);
  for (std::string_view piece : pieces.pieces) encode_piece(piece, pieces.byte_level, ids);
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!tokenizer::is_valid_utf8(text)) {
    repaired = tokenizer::to_valid_utf8(text);
    text = repaired;
  }
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const tokenizer::TextSegment& segment : added_tokens_.split(text)) {
    if (segment.added_token_id)
      ids.push_back(*segment.added_token_id);
    else
      encode_plain_text(segment.text, ids);
  }
  return add_special_tokens ? post_processor_.apply(std::move(ids)) : ids;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (const tokenizer::AddedToken* added = added_tokens_.find(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
    } else if (const std::string* token = model_.id_to_token(id)) {
      tokens.push_back(*token);
    } else {
      fail("token id {} is not in the vocabulary (vocab size {})", id, vocab_size());
    }
  }
  return decoder_.decode(std::move(tokens));
}

int Tokenizer::vocab_size() const { return std::max(model_.id_limit(), added_tokens_.id_limit()); }

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_tokens_.find(token)) return id;
  return model_.token_to_id(token);
}

std::string Tokenizer::id_to_token(int id) const {
  if (const tokenizer::AddedToken* added = added_tokens_.find(id)) return added->content;
  if (const std::string* token = model_.id_to_token(id)) return *token;
  fail("token id {} is not in the vocabulary (vocab size {})", id, vocab_size());
}

}  // namespace troupe
