// GGUF checkpoints: the container (model/gguf_file.*) validated field by field, ggml's block formats
// (kernels/quant_blocks.*) byte for byte against files llama.cpp's tools wrote, the GGUF tokenizer
// against the model folder's tokenizer.json, and the shared GGUF files' weight-only references.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "kernels/error.hpp"
#include "kernels/quant_blocks.hpp"
#include "model/gguf_checkpoint.hpp"
#include "model/gguf_file.hpp"
#include "model/model_config.hpp"
#include "model/tokenizer/gguf_vocab.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/weight_store.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"
#include "tests/reference_cases.hpp"
#include "tests/reference_requests.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A GGUF header built by hand, field by field, to corrupt one field at a time.
struct GgufBytes {
  std::string b;
  GgufBytes& u32(uint32_t v) { return raw(&v, 4); }
  GgufBytes& u64(uint64_t v) { return raw(&v, 8); }
  GgufBytes& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  GgufBytes& raw(const void* p, size_t n) {
    b.append(static_cast<const char*>(p), n);
    return *this;
  }
  GgufBytes& pad(size_t alignment = 32) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
};

// magic, version, counts, one u32 key, then one tensor "t" of `dims` and `type` at `offset`.
GgufBytes header(uint32_t version, std::vector<uint64_t> dims, uint32_t type, uint64_t offset, uint64_t n_tensors = 1) {
  GgufBytes g;
  g.u32(0x46554747).u32(version).u64(n_tensors).u64(1);
  g.str("general.alignment").u32(4).u32(32);
  for (uint64_t t = 0; t < n_tensors; ++t) {
    std::string name(1, 't');
    if (n_tensors > 1) name.append(std::to_string(t));
    g.str(name).u32(uint32_t(dims.size()));
    for (auto d : dims) g.u64(d);
    g.u32(type).u64(offset);
  }
  return g.pad();
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse_gguf(bytes, "x.gguf"); });
}

std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> v(size_t(n), 0.0f);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> prefix(const std::vector<int32_t>& v, size_t n) {
  return {v.begin(), v.begin() + std::ptrdiff_t(std::min(n, v.size()))};
}

}  // namespace

TEST_CASE("GGUF files of aidreams260K and gqa260K (F32, Q8_0, Q4_0) give their weight-only reference ids") {
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  for (const char* name : {"aidreams260K-f32.gguf", "aidreams260K-q8_0.gguf", "aidreams260K-q4_0.gguf",
                           "gqa260K-f32.gguf", "gqa260K-q8_0.gguf", "gqa260K-q4_0.gguf"}) {
    const auto file = dir / name;
    auto cases = test::load_gguf_reference_cases(file);
    LocalModelExecutor executor(file);
    auto results = BatchGenerator(executor).run(test::reference_requests(cases));
    for (size_t i = 0; i < cases.size(); ++i) {
      INFO(name, " case ", i);
      CHECK(prefix(results[i].ids, cases[i].compare_first) == prefix(cases[i].greedy_ids, cases[i].compare_first));
    }
  }
}

TEST_CASE("a GGUF checkpoint maps to the Hugging Face config and tensors of the same model") {
  TROUPE_REQUIRE_SHARED(gguf, "models/gguf/gqa260K-f32.gguf");
  TROUPE_REQUIRE_SHARED(hf, "models/gqa260K");
  const ModelConfig a = ModelConfig::load(gguf), b = ModelConfig::load(hf);
  CHECK(a.hidden_size == b.hidden_size);
  CHECK(a.intermediate_size == b.intermediate_size);
  CHECK(a.num_hidden_layers == b.num_hidden_layers);
  CHECK(a.num_attention_heads == b.num_attention_heads);
  CHECK(a.num_key_value_heads == b.num_key_value_heads);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.max_position_embeddings == b.max_position_embeddings);
  CHECK(a.tie_word_embeddings == b.tie_word_embeddings);
  CHECK(a.rms_norm_eps == doctest::Approx(b.rms_norm_eps));
  CHECK(a.rope_theta == doctest::Approx(b.rope_theta));
  // The F32 file's q/k rows, put back in rotate-half order, are the checkpoint's bit for bit.
  const GgufFile file(gguf);
  const auto weights = gguf_weights(file, a);
  CHECK(gguf_tensor_name("model.layers.2.self_attn.k_proj.weight") == "blk.2.attn_k.weight");
  CHECK(gguf_tensor_name("model.rotary_emb.inv_freq") == std::nullopt);
  const auto hf_store = WeightStore::open(hf);
  for (const char* n : {"model.layers.0.self_attn.q_proj.weight", "model.layers.4.self_attn.k_proj.weight",
                        "model.layers.1.mlp.down_proj.weight", "model.embed_tokens.weight"}) {
    INFO(n);
    const Tensor& g = weights.at(n);
    CHECK(g.to_floats() == hf_store.get(n, g.shape()).to_floats());
  }
  // permute_to_interleaved undoes permute_to_rotate_half.
  const Tensor q = weights.at("model.layers.0.self_attn.q_proj.weight");
  CHECK(permute_to_rotate_half(permute_to_interleaved(q, a.num_attention_heads), a.num_attention_heads).to_floats() ==
        q.to_floats());
  CHECK(permute_to_interleaved(q, a.num_attention_heads).to_floats() != q.to_floats());
}

TEST_CASE("Q8_0 and Q4_0 quantization writes the bytes llama.cpp's quantizer wrote for the same f32 rows") {
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  for (const char* model : {"aidreams260K", "gqa260K"}) {
    const GgufFile f32(dir / (std::string(model) + "-f32.gguf"));
    for (const char* q : {"q8_0", "q4_0"}) {
      const GgufFile quantized(dir / (std::string(model) + "-" + q + ".gguf"));
      int compared = 0;
      for (const auto& info : quantized.tensors()) {
        if (info.type == GgmlType::F32) continue;
        const auto* src = f32.find_tensor(info.name);
        REQUIRE(src != nullptr);
        REQUIRE(src->type == GgmlType::F32);
        std::string bytes(size_t(info.bytes), '\0');
        quantize_row(info.type, static_cast<const float*>(f32.tensor_bytes(*src)), bytes.data(), info.values);
        INFO(model, " ", q, " ", info.name);
        CHECK(std::memcmp(bytes.data(), quantized.tensor_bytes(info), bytes.size()) == 0);
        ++compared;
      }
      CHECK(compared > 10);
    }
  }
}

TEST_CASE("quantizing dequantized Q8_0 and Q4_0 blocks gives the same blocks (every block of the shared files)") {
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  int64_t blocks = 0;
  for (const char* name :
       {"aidreams260K-q8_0.gguf", "aidreams260K-q4_0.gguf", "gqa260K-q8_0.gguf", "gqa260K-q4_0.gguf"}) {
    const GgufFile f(dir / name);
    for (const auto& t : f.tensors()) {
      if (t.type == GgmlType::F32) continue;
      std::vector<float> values(size_t(t.values));
      const int64_t row = t.dims[0], row_bytes = ggml_row_bytes(t.type, row);
      const char* src = static_cast<const char*>(f.tensor_bytes(t));
      std::string again(size_t(t.bytes), '\0');
      for (int64_t r = 0; r < t.values / row; ++r) {
        dequantize_row(t.type, src + r * row_bytes, values.data() + r * row, row);
        quantize_row(t.type, values.data() + r * row, again.data() + r * row_bytes, row);
      }
      INFO(name, " ", t.name);
      CHECK(std::memcmp(again.data(), src, again.size()) == 0);
      blocks += t.values / 32;
    }
  }
  CHECK(blocks > 10000);
}

TEST_CASE("ggml blocks: dequantize inverts quantize within a quantization step, and K-quant layouts decode") {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
    const auto x = random_row(256, 7);
    std::string q(size_t(ggml_row_bytes(type, 256)), '\0');
    quantize_row(type, x.data(), q.data(), 256);
    std::vector<float> y(256);
    dequantize_row(type, q.data(), y.data(), 256);
    for (int64_t b = 0; b < 256; b += 32) {
      float amax = 0;
      for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[size_t(i)]));
      const float step = type == GgmlType::Q8_0 ? amax / 127 : type == GgmlType::Q4_0 ? amax / 8 : amax / 128;
      for (int64_t i = b; i < b + 32; ++i) {
        INFO(ggml_type_name(uint32_t(type)), " value ", i);
        CHECK(std::fabs(y[size_t(i)] - x[size_t(i)]) <= step * 1.01f + 1e-7f);
      }
    }
  }
  CHECK(error_of([] {
          float x[33] = {};
          char out[64];
          quantize_row(GgmlType::Q8_0, x, out, 33);
        }).find("not a whole number of Q8_0 blocks") != std::string::npos);

  // Q4_K: d = 1, dmin = 0.5, every 6-bit scale 1 and min 2: value = nibble - 1, nibbles low then high per 32 bytes.
  unsigned char q4k[144] = {};
  const uint16_t one = f32_to_f16(1.0f), half = f32_to_f16(0.5f);
  std::memcpy(q4k, &one, 2);
  std::memcpy(q4k + 2, &half, 2);
  for (int j = 0; j < 4; ++j) q4k[4 + j] = 1, q4k[4 + 4 + j] = 2;  // scales 0..3 and mins 0..3
  for (int j = 0; j < 4; ++j) q4k[4 + 8 + j] = 0x21;               // scales/mins 4..7: low nibble 1, high 2
  for (int l = 0; l < 128; ++l) q4k[16 + l] = uint8_t((l % 16) | ((15 - l % 16) << 4));
  std::vector<float> y(256);
  dequantize_row(GgmlType::Q4_K, q4k, y.data(), 256);
  for (int chunk = 0; chunk < 4; ++chunk)
    for (int l = 0; l < 32; ++l) {
      INFO("chunk ", chunk, " l ", l);
      const int byte = chunk * 32 + l;
      CHECK(y[size_t(chunk * 64 + l)] == float(byte % 16) - 1.0f);
      CHECK(y[size_t(chunk * 64 + 32 + l)] == float(15 - byte % 16) - 1.0f);
    }
  // Q6_K: d = 2, scales 1..16, 6-bit values from 4 low bits (ql) and 2 high bits (qh), minus 32.
  unsigned char q6k[210] = {};
  for (int l = 0; l < 128; ++l) q6k[l] = uint8_t(l % 16 | ((l + 3) % 16) << 4);
  for (int l = 0; l < 64; ++l) q6k[128 + l] = uint8_t(l % 256);
  for (int s = 0; s < 16; ++s) q6k[192 + s] = uint8_t(s + 1);
  const uint16_t two = f32_to_f16(2.0f);
  std::memcpy(q6k + 208, &two, 2);
  dequantize_row(GgmlType::Q6_K, q6k, y.data(), 256);
  for (int half_block = 0; half_block < 2; ++half_block)
    for (int l = 0; l < 32; ++l) {
      const unsigned char* ql = q6k + 64 * half_block;
      const unsigned char* qh = q6k + 128 + 32 * half_block;
      const int sc = 8 * half_block + l / 16 + 1;  // scales[is] with is = l/16 (+8 per half block) holds is + 1
      const float* out = y.data() + 128 * half_block;
      INFO("half ", half_block, " l ", l);
      CHECK(out[l] == 2.0f * float(sc) * float(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32));
      CHECK(out[l + 32] == 2.0f * float(sc + 2) * float(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32));
      CHECK(out[l + 64] == 2.0f * float(sc + 4) * float(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32));
      CHECK(out[l + 96] == 2.0f * float(sc + 6) * float(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32));
    }
}

TEST_CASE("a GGUF tokenizer (tokenizer.ggml.*) encodes and decodes as the model folder's tokenizer.json") {
  TROUPE_REQUIRE_SHARED(gguf, "models/gguf/aidreams260K-q4_0.gguf");
  TROUPE_REQUIRE_SHARED(hf, "models/aidreams260K");
  const auto from_gguf = Tokenizer::from_model(gguf);
  REQUIRE(from_gguf);
  const Tokenizer reference = Tokenizer::from_dir(hf);
  CHECK(from_gguf->vocab_size() == reference.vocab_size());
  CHECK(from_gguf->bos_id() == reference.bos_id());
  CHECK(from_gguf->eos_id() == reference.eos_id());
  std::vector<std::string> texts = {
      "Hello world", "  two  spaces", "tabs\tand\nnewlines\n\n", "ünïcödé ✓ 😀 中文", "</s> <s> special", "", " ", "x"};
  for (const auto& c : test::load_reference_cases(hf))
    if (!c.prompt_text.empty()) texts.push_back(c.prompt_text);
  std::mt19937 rng(3);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz ,.'\n";
  for (int i = 0; i < 50; ++i) {
    std::string s;
    for (int k = 0; k < 40; ++k) s += alphabet[rng() % alphabet.size()];
    texts.push_back(s);
  }
  for (const auto& t : texts) {
    INFO("text: '", t, "'");
    const auto ids = reference.encode(t, true);
    CHECK(from_gguf->encode(t, true) == ids);
    CHECK(from_gguf->decode(ids) == reference.decode(ids));
  }
}

TEST_CASE("llama-2-tiny-random.gguf loads, tokenizes as Llama 2 does, and generates") {
  TROUPE_REQUIRE_SHARED(file, "models/gguf/llama-2-tiny-random.gguf");
  const ModelConfig c = ModelConfig::load(file);
  CHECK(c.vocab_size == 32000);
  CHECK(c.hidden_size == 8);
  CHECK(c.num_hidden_layers == 1);
  CHECK_FALSE(c.tie_word_embeddings);
  const auto tokenizer = Tokenizer::from_model(file);
  REQUIRE(tokenizer);
  CHECK(tokenizer->encode("Hello world", true) == std::vector<int>{1, 15043, 3186});  // <s> ▁Hello ▁world
  CHECK(tokenizer->decode(std::vector<int>{15043, 3186}) == "Hello world");
  LocalModelExecutor executor(file);
  GenerationRequest r;
  r.prompt_ids = {1, 15043, 3186};
  r.max_tokens = 8;
  auto first = BatchGenerator(executor).run({r, r});
  REQUIRE(first.size() == 2);
  CHECK(first[0].ids.size() == 8);
  CHECK(first[0].ids == first[1].ids);
  for (int32_t id : first[0].ids) CHECK((id >= 0 && id < 32000));
}

TEST_CASE("write_gguf and parse_gguf round-trip every metadata type and tensor type") {
  const auto path = std::filesystem::temp_directory_path() / ("troupe-gguf-" + std::to_string(::getpid()) + ".gguf");
  std::vector<std::pair<std::string, GgufValue>> meta = {
      {"a.u8", GgufValue(GgufType::U8, uint64_t(200))},
      {"a.i8", GgufValue(GgufType::I8, int64_t(-100))},
      {"a.u16", GgufValue(GgufType::U16, uint64_t(60000))},
      {"a.i16", GgufValue(GgufType::I16, int64_t(-30000))},
      {"a.u32", GgufValue::u32(4000000000u)},
      {"a.i32", GgufValue::i32(-2000000000)},
      {"a.f32", GgufValue::f32(1.5f)},
      {"a.bool", GgufValue::boolean(true)},
      {"a.str", GgufValue::string("héllo")},
      {"a.u64", GgufValue(GgufType::U64, uint64_t(1) << 63)},
      {"a.i64", GgufValue(GgufType::I64, int64_t(-1) << 62)},
      {"a.f64", GgufValue(GgufType::F64, 0.25)},
      {"a.strings", GgufValue::array(GgufType::String, {std::string("x"), std::string("")})},
      {"a.ints", GgufValue::array(GgufType::I32, {int64_t(-1), int64_t(7)})},
  };
  std::vector<GgufTensorToWrite> tensors;
  const auto row = random_row(64, 1);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    GgufTensorToWrite w{ggml_type_name(uint32_t(t)), {64, 1}, t, std::string(size_t(ggml_row_bytes(t, 64)), '\0')};
    quantize_row(t, row.data(), w.bytes.data(), 64);
    tensors.push_back(std::move(w));
  }
  write_gguf(path, meta, tensors);
  const GgufFile f(path);
  std::filesystem::remove(path);
  CHECK(f.version() == 3);
  REQUIRE(f.metadata().size() == meta.size());
  CHECK(f.get("a.u8").as_int("") == 200);
  CHECK(f.get("a.i8").as_int("") == -100);
  CHECK(f.get("a.u16").as_int("") == 60000);
  CHECK(f.get("a.i16").as_int("") == -30000);
  CHECK(f.get("a.u32").as_int("") == 4000000000ll);
  CHECK(f.get("a.i32").as_int("") == -2000000000);
  CHECK(f.get("a.f32").as_float("") == 1.5);
  CHECK(f.get("a.bool").as_bool(""));
  CHECK(f.get("a.str").as_string("") == "héllo");
  CHECK(error_of([&] { f.get("a.u64").as_int("a.u64"); }).find("too large") != std::string::npos);
  CHECK(f.get("a.i64").as_int("") == int64_t(-1) << 62);
  CHECK(f.get("a.f64").as_float("") == 0.25);
  CHECK(f.get("a.strings").strings("") == std::vector<std::string>{"x", ""});
  CHECK(f.get("a.ints").ints("") == std::vector<int64_t>{-1, 7});
  CHECK(error_of([&] { f.get("a.str").as_int("a.str"); }) == "GGUF key a.str: expected an integer, found string");
  CHECK(error_of([&] { f.get("missing"); }).find("metadata key missing is missing") != std::string::npos);
  REQUIRE(f.tensors().size() == tensors.size());
  for (const auto& w : tensors) {
    const auto* info = f.find_tensor(w.name);
    REQUIRE(info != nullptr);
    CHECK(info->type == w.type);
    CHECK(info->shape() == Shape{1, 64});
    CHECK(std::string(static_cast<const char*>(f.tensor_bytes(*info)), size_t(info->bytes)) == w.bytes);
  }
}

TEST_CASE("corrupt GGUF headers are refused with an error naming the field, never a crash") {
  // A valid file: one 32-value Q8_0 tensor (34 bytes) at offset 0.
  const std::string good = header(3, {32}, 8, 0).b + std::string(34, '\1');
  CHECK(parse_gguf(good, "x.gguf").tensors.size() == 1);
  // Every truncation is refused.
  for (size_t n = 0; n + 1 < good.size(); ++n) {
    INFO("first ", n, " bytes");
    CHECK(parse_error(good.substr(0, n)) != "(no error)");
  }
  std::string bad_magic = good;
  bad_magic[2] = 'M';
  bad_magic[3] = 'L';
  CHECK(parse_error(bad_magic).find("not a GGUF file") != std::string::npos);
  CHECK(parse_error(header(1, {32}, 8, 0).b + std::string(34, 0)).find("version 1") != std::string::npos);
  CHECK(parse_error(header(4, {32}, 8, 0).b + std::string(34, 0)).find("version 4 is not supported") !=
        std::string::npos);
  CHECK(parse_error(header(3, {32}, 13, 0).b + std::string(176, 0)).find("type Q5_K, which troupe does not read") !=
        std::string::npos);
  CHECK(parse_error(header(3, {33}, 8, 0).b + std::string(68, 0)).find("not whole Q8_0 blocks") != std::string::npos);
  CHECK(parse_error(header(3, {0}, 0, 0).b).find("dimension 0 is 0") != std::string::npos);
  CHECK(parse_error(header(3, {1, 1, 1, 1, 1}, 0, 0).b + std::string(4, 0)).find("5 dimensions") != std::string::npos);
  CHECK(parse_error(header(3, {1ull << 41}, 0, 0).b).find("1..2^40") != std::string::npos);
  CHECK(parse_error(header(3, {1ull << 30, 1ull << 30}, 0, 0).b).find("too many values") != std::string::npos);
  CHECK(parse_error(header(3, {32}, 8, 16).b + std::string(64, 0)).find("not a multiple of the alignment") !=
        std::string::npos);
  CHECK(parse_error(header(3, {32}, 8, 32).b + std::string(34, 0)).find("runs past the end of the data section") !=
        std::string::npos);
  CHECK(parse_error(header(3, {32}, 8, 0, 2).b + std::string(80, 0)).find("overlap") != std::string::npos);
  // Counts the file cannot hold.
  GgufBytes many;
  many.u32(0x46554747).u32(3).u64(uint64_t(1) << 40).u64(0);
  CHECK(parse_error(many.b).find("tensors (at most") != std::string::npos);
  GgufBytes keys;
  keys.u32(0x46554747).u32(3).u64(0).u64(3).str("k").u32(9).u32(4).u64(uint64_t(1) << 60);
  CHECK(parse_error(keys.b).find("claims 1152921504606846976 elements") != std::string::npos);
  GgufBytes nested;
  nested.u32(0x46554747).u32(3).u64(0).u64(1).str("k").u32(9).u32(9).u64(0);
  CHECK(parse_error(nested.b).find("array of arrays") != std::string::npos);
  GgufBytes bad_type;
  bad_type.u32(0x46554747).u32(3).u64(0).u64(1).str("k").u32(13);
  CHECK(parse_error(bad_type.b).find("value type 13") != std::string::npos);
  GgufBytes twice;
  twice.u32(0x46554747).u32(3).u64(0).u64(2).str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  CHECK(parse_error(twice.b).find("'k' appears twice") != std::string::npos);
  GgufBytes bad_bool;
  bad_bool.u32(0x46554747).u32(3).u64(0).u64(1).str("k").u32(7).raw("\x02", 1);
  CHECK(parse_error(bad_bool.b).find("bool of value 2") != std::string::npos);
  GgufBytes long_string;
  long_string.u32(0x46554747).u32(3).u64(0).u64(1).str("k").u32(8).u64(1000).raw("abc", 3);
  CHECK(parse_error(long_string.b).find("runs past the end of the file") != std::string::npos);
  GgufBytes alignment;
  alignment.u32(0x46554747).u32(3).u64(0).u64(1).str("general.alignment").u32(4).u32(24);
  CHECK(parse_error(alignment.b).find("not a power of two") != std::string::npos);
  // A real file, cut short, refuses to open.
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  std::ifstream in(dir / "gqa260K-q8_0.gguf", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const GgufLayout layout = parse_gguf(bytes, "real");
  CHECK(layout.tensors.size() > 10);
  uint64_t end = 0;
  for (const auto& t : layout.tensors) end = std::max(end, layout.data_begin + t.offset + uint64_t(t.bytes));
  CHECK(parse_error(bytes.substr(0, end - 1)).find("runs past the end of the data section") != std::string::npos);
}

TEST_CASE("a folder holding one GGUF file and no config.json is a GGUF model, and unsupported files name why") {
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  CHECK(find_gguf_model(dir / "gqa260K-f32.gguf") == dir / "gqa260K-f32.gguf");
  CHECK(error_of([&] { find_gguf_model(dir); }).find("holds 7 .gguf files") != std::string::npos);
  const auto tmp = std::filesystem::temp_directory_path() / ("troupe-gguf-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  CHECK(find_gguf_model(tmp) == std::nullopt);
  std::filesystem::copy_file(dir / "aidreams260K-q8_0.gguf", tmp / "model.gguf");
  CHECK(find_gguf_model(tmp) == tmp / "model.gguf");
  CHECK(ModelConfig::load(tmp).hidden_size == 64);
  CHECK(Tokenizer::from_model(tmp).has_value());
  // Unsupported metadata is refused by name.
  const GgufFile real(dir / "aidreams260K-f32.gguf");
  auto rewrite = [&](const std::string& key, GgufValue value) {
    auto meta = real.metadata();
    bool found = false;
    for (auto& [k, v] : meta)
      if (k == key) v = value, found = true;
    if (!found) meta.emplace_back(key, value);
    write_gguf(tmp / "model.gguf", meta,
               {{"token_embd.weight", {64, 512}, GgmlType::F32, std::string(64 * 512 * 4, 0)}});
    return error_of([&] { ModelConfig::load(tmp); });
  };
  CHECK(rewrite("general.architecture", GgufValue::string("falcon")).find("'falcon' is not supported") !=
        std::string::npos);
  CHECK(rewrite("llama.expert_count", GgufValue::u32(8)).find("mixture-of-experts GGUF") != std::string::npos);
  CHECK(rewrite("llama.rope.dimension_count", GgufValue::u32(8)).find("partial rotary") != std::string::npos);
  CHECK(
      rewrite("llama.embedding_length", GgufValue::string("64")).find("llama.embedding_length: expected an integer") !=
      std::string::npos);
  std::filesystem::remove_all(tmp);
}

TEST_CASE(
    "troupe convert --to gguf: F32 files of aidreams260K and gqa260K give the reference ids, Q8_0 and Q4_0 hold "
    "llama.cpp's bytes") {
  TROUPE_REQUIRE_SHARED(models, "models");
  const auto tmp = std::filesystem::temp_directory_path() / ("troupe-convert-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  for (const char* model : {"aidreams260K", "gqa260K"}) {
    const auto f32 = tmp / (std::string(model) + "-f32.gguf");
    size_t progress_calls = 0;
    const size_t n =
        write_gguf_checkpoint(models / model, f32, GgmlType::F32, [&](size_t, size_t) { ++progress_calls; });
    CHECK(progress_calls == n);
    auto cases = test::load_reference_cases(models / model);
    LocalModelExecutor executor(f32);
    auto results = BatchGenerator(executor).run(test::reference_requests(cases));
    for (size_t i = 0; i < cases.size(); ++i) {
      INFO(model, " case ", i);
      CHECK(prefix(results[i].ids, cases[i].compare_first) == prefix(cases[i].greedy_ids, cases[i].compare_first));
    }
    for (const char* q : {"q8_0", "q4_0"}) {
      const auto out = tmp / (std::string(model) + "-" + q + ".gguf");
      write_gguf_checkpoint(models / model, out, *parse_ggml_type(q));
      const GgufFile mine(out), theirs(models / "gguf" / (std::string(model) + "-" + q + ".gguf"));
      REQUIRE(mine.tensors().size() == theirs.tensors().size());
      for (const auto& t : theirs.tensors()) {
        const auto* m = mine.find_tensor(t.name);
        INFO(model, " ", q, " ", t.name);
        REQUIRE(m != nullptr);
        CHECK(m->type == t.type);
        CHECK(m->dims == t.dims);
        CHECK(std::memcmp(mine.tensor_bytes(*m), theirs.tensor_bytes(t), size_t(t.bytes)) == 0);
      }
    }
  }
  CHECK(error_of([&] {
          write_gguf_checkpoint(models / "mixtral-tiny", tmp / "x.gguf", GgmlType::F32);
        }).find("model_type 'mixtral' does not convert to GGUF yet") != std::string::npos);
  std::filesystem::remove_all(tmp);
}

TEST_CASE("byte-level BPE tokenizers (llama3, qwen3) written as GGUF metadata read back and encode their references") {
  for (const char* name : {"llama3", "qwen3"}) {
    TROUPE_REQUIRE_SHARED(dir, std::string("tokenizers/") + name);
    const auto path = std::filesystem::temp_directory_path() / ("troupe-tok-" + std::to_string(::getpid()) + ".gguf");
    auto meta = gguf_tokenizer_metadata(dir);
    meta.insert(meta.begin(), {"general.architecture", GgufValue::string("llama")});
    write_gguf(path, meta, {});
    const auto files = gguf_tokenizer_json(GgufFile(path));
    std::filesystem::remove(path);
    REQUIRE(files);
    const Tokenizer from_gguf = Tokenizer::from_json(files->tokenizer_json, files->tokenizer_config_json);
    const Tokenizer reference = Tokenizer::from_dir(dir);
    CHECK(from_gguf.vocab_size() == reference.vocab_size());
    std::ifstream in(dir / "reference.json");
    const auto j = nlohmann::json::parse(in);
    int checked = 0;
    for (const auto& c : j.at("cases")) {
      const auto text = c.at("text").get<std::string>();
      INFO(name, " text: '", text, "'");
      const auto ids = c.at("ids").get<std::vector<int>>();
      CHECK(from_gguf.encode(text, false) == ids);
      CHECK(from_gguf.decode(ids) == reference.decode(ids));
      ++checked;
    }
    CHECK(checked >= 10);
  }
}

TEST_CASE("quantizing a float checkpoint at load gives the ids of llama.cpp's file of the same quantization") {
  TROUPE_REQUIRE_SHARED(folder, "models/aidreams260K");
  TROUPE_REQUIRE_SHARED(gguf, "models/gguf/aidreams260K-q4_0.gguf");
  auto requests = test::reference_requests(test::load_reference_cases(folder));
  LocalModelExecutor quantized(folder, KvCacheOptions{}, {}, WeightFormat::Q4_0), file(gguf), plain(folder);
  const auto a = BatchGenerator(quantized).run(requests), b = BatchGenerator(file).run(requests),
             c = BatchGenerator(plain).run(requests);
  bool differs_from_f32 = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    CHECK(a[i].ids == b[i].ids);
    differs_from_f32 |= a[i].ids != c[i].ids;
  }
  CHECK(differs_from_f32);  // the quantization took effect
}
