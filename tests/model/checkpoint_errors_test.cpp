// Corrupt and inconsistent checkpoints fail with an error naming the file, the tensor and the
// expectation — never a crash.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/llama_model.hpp"
#include "model/model_config.hpp"
#include "model/model_presets.hpp"
#include "model/safetensors_file.hpp"
#include "model/weight_store.hpp"

using namespace troupe;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("troupe_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A raw safetensors file from a header string and a data section of `data_bytes` bytes.
void write_raw(const fs::path& path, const std::string& header, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  uint64_t len = header.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << header;
  out << std::string(data_bytes, '\0');
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("safetensors round trip") {
  fs::path dir = temp_dir("roundtrip");
  Tensor a = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  write_safetensors(dir / "t.safetensors", {{"a", a}, {"b", a.to(DType::BF16)}});
  SafetensorsFile f(dir / "t.safetensors");
  CHECK(f.tensor("a").to_floats() == a.to_floats());
  CHECK(f.tensor("b").dtype() == DType::BF16);
  CHECK_FALSE(f.tensor("a").owns_memory());  // zero-copy view into the mapping
  fs::remove_all(dir);
}

TEST_CASE("corrupt safetensors files are clear errors") {
  fs::path dir = temp_dir("corrupt");
  fs::path p = dir / "bad.safetensors";

  std::ofstream(p, std::ios::binary) << "abc";
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("too short for the 8-byte header length") != std::string::npos);

  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 16);
  { SafetensorsFile ok(p); }
  fs::resize_file(p, fs::file_size(p) - 10);  // truncated
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("lie outside the data section of 6 bytes") != std::string::npos);

  {  // header length pointing past the end
    std::ofstream out(p, std::ios::binary);
    uint64_t len = 1 << 20;
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << "{}";
  }
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("runs past the end of the file") != std::string::npos);

  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("'w' is f32 [2, 2] = 16 bytes but data_offsets span 12 bytes") !=
        std::string::npos);

  write_raw(
      p,
      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("tensors overlap") != std::string::npos);

  write_raw(p, R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("unknown dtype 'Q4'") != std::string::npos);

  write_raw(p, R"({"w": not json)", 0);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("header is not valid JSON") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a safetensors shape whose byte count wraps around is refused") {
  fs::path dir = temp_dir("wrap");
  fs::path p = dir / "wrap.safetensors";
  // 2^62 f32 elements are 2^64 bytes: 0 in 64-bit arithmetic, which an empty data span would match.
  write_raw(p, R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("needs more bytes than 64 bits count") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a safetensors header with a number JSON cannot hold is a clear error") {
  fs::path dir = temp_dir("fuzz_number");
  fs::path p = dir / "m.safetensors";
  // nlohmann's out_of_range (not a parse_error) used to escape as a foreign exception (found by
  // tests/fuzz/safetensors_fuzz.cpp).
  write_raw(p, R"({"w":{"dtype":"F32","shape":[23E8336],"data_offsets":[0,0]}})", 0);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("header is not valid JSON") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a safetensors shape with a zero dimension cannot hide dimensions whose strides overflow") {
  fs::path dir = temp_dir("fuzz_strides");
  fs::path p = dir / "m.safetensors";
  // No element, so no byte: it used to pass, and the tensor's strides then overflowed.
  write_raw(p, R"({"w":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", 0);
  CHECK(error_of([&] { SafetensorsFile f(p); }).find("tensor 'w' shape overflows") != std::string::npos);
  write_raw(p, R"({"w":{"dtype":"F32","shape":[0,65536,65536],"data_offsets":[0,0]}})", 0);
  CHECK(SafetensorsFile(p).tensor("w").shape() == Shape{0, 65536, 65536});
  fs::remove_all(dir);
}

TEST_CASE("config.json numbers out of their field's range are errors naming the field") {
  const std::string base = R"("num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10,"intermediate_size":8)";
  auto error = [&](const std::string& fields) {
    return error_of([&] { ModelConfig::from_json_text("{" + fields + "," + base + "}", "c.json"); });
  };
  // Found by tests/fuzz/model_config_fuzz.cpp: a float as an integer field was cast (undefined
  // behaviour for 5.5e109), and a number JSON cannot hold escaped as nlohmann's out_of_range.
  CHECK(error(R"("hidden_size":5.5e109)") ==
        "c.json: field 'hidden_size' (5.5e+109) is not an integer in -9223372036854775808..9223372036854775807");
  CHECK(error(R"("hidden_size":1e716993093)").find("c.json: not valid JSON") == 0);
  CHECK(error(R"("hidden_size":64,"rms_norm_eps":1e300)") ==
        "c.json: field 'rms_norm_eps' (1e+300) is not a finite number in range");
  CHECK(error(R"("hidden_size":64,"eos_token_id":4294967298)") ==
        "c.json: eos_token_id (4294967298) is not an integer in -2147483648..2147483647");
  CHECK(error(R"("hidden_size":64.5)").find("is not an integer") != std::string::npos);
  CHECK(error(R"("hidden_size":64.0)") == "(no error)");  // an integer written as a float is fine
}

TEST_CASE("config.json sizes beyond any model are refused before a loader loops over them") {
  auto error = [](const std::string& json) { return error_of([&] { ModelConfig::from_json_text(json, "c.json"); }); };
  // 10^8 layers used to send expected_tensor_names (and the loader) into a minutes-long loop
  // (a timeout of tests/fuzz/model_config_fuzz.cpp).
  CHECK(error(R"({"hidden_size":64,"num_hidden_layers":100000000,"num_attention_heads":4,"vocab_size":10,
                  "intermediate_size":8})") == "c.json: num_hidden_layers (100000000) is larger than 1024");
  CHECK(error(R"({"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":4294967296,
                  "intermediate_size":8})") == "c.json: vocab_size (4294967296) is larger than 16777216");
  CHECK(error(R"({"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10,
                  "intermediate_size":8,"head_dim":131072})") == "c.json: head_dim (131072) is larger than 65536");
  CHECK(error(R"({"model_type":"mixtral","hidden_size":64,"num_hidden_layers":512,"num_attention_heads":4,
                  "vocab_size":10,"intermediate_size":8,"num_local_experts":1024,"num_experts_per_tok":2})") ==
        "c.json: 512 layers of 1024 experts: more than 262144 expert tensors to load");
  CHECK(error(R"({"hidden_size":64,"num_hidden_layers":1024,"num_attention_heads":4,"vocab_size":16777216,
                  "intermediate_size":8,"max_position_embeddings":268435456})") == "(no error)");
}

TEST_CASE("config errors name the field") {
  CHECK(
      error_of([] {
        ModelConfig::from_json_text(
            R"({"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":5,"vocab_size":10,"intermediate_size":8})",
            "c.json");
      }).find("hidden_size (64) is not divisible by num_attention_heads (5)") != std::string::npos);
  CHECK(error_of([] {
          ModelConfig::from_json_text(R"({"hidden_size":64,"num_attention_heads":4,"vocab_size":10})", "c.json");
        }).find("missing required field 'num_hidden_layers'") != std::string::npos);
  CHECK(error_of([] {
          ModelConfig::from_json_text(
              R"({"hidden_size":"big","num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10})", "c.json");
        }).find("field 'hidden_size' has the wrong type") != std::string::npos);
  CHECK(error_of([] {
          ModelConfig::from_json_text(R"({"model_type":"gpt2"})", "c.json");
        }).find("model_type 'gpt2' is not supported") != std::string::npos);
  auto c = ModelConfig::from_json_text(
      R"({"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10,"intermediate_size":8,
          "eos_token_id":[1,2],"rope_scaling":{"rope_type":"llama3","factor":8.0,"original_max_position_embeddings":8192}})",
      "c.json");
  CHECK(c.eos_token_ids == std::vector<int>{1, 2});
  CHECK(c.head_dim == 16);
  CHECK(c.rope_scaling.type == RopeScaling::Type::Llama3);
}

TEST_CASE("checkpoints that do not match the config: missing, unexpected and misshapen tensors") {
  fs::path dir = temp_dir("mismatch");
  write_random_model("tiny", dir, DType::F32, 1);
  ModelConfig config = ModelConfig::load(dir);
  {  // sanity: the written checkpoint loads
    WeightStore store = WeightStore::open(dir);
    LlamaModel model(config, store, {});
  }
  SafetensorsFile original(dir / "model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, e] : original.entries()) tensors[name] = original.tensor(name).clone();

  auto with = [&](std::map<std::string, Tensor> t) {
    write_safetensors(dir / "model.safetensors", t);
    return error_of([&] {
      WeightStore store = WeightStore::open(dir);
      LlamaModel model(config, store, {});
    });
  };
  auto missing = tensors;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  CHECK(with(missing).find("missing tensor(s) model.layers.1.mlp.up_proj.weight") != std::string::npos);
  auto extra = tensors;
  extra["model.layers.9.mlp.up_proj.weight"] = Tensor::zeros({1}, DType::F32);
  CHECK(with(extra).find("unexpected tensor(s) model.layers.9.mlp.up_proj.weight") != std::string::npos);
  auto misshapen = tensors;
  misshapen["model.layers.0.self_attn.q_proj.weight"] = Tensor::zeros({64, 63}, DType::F32);
  CHECK(with(misshapen).find(
            "'model.layers.0.self_attn.q_proj.weight' has shape [64, 63] but the config implies [64, 64]") !=
        std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("sharded checkpoints load through model.safetensors.index.json") {
  fs::path dir = temp_dir("sharded");
  Tensor a = Tensor::from_floats({1, 2}, {2}), b = Tensor::from_floats({3}, {1});
  write_safetensors(dir / "part-1.safetensors", {{"a", a}});
  write_safetensors(dir / "part-2.safetensors", {{"b", b}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"part-1.safetensors","b":"part-2.safetensors"}})";
  WeightStore store = WeightStore::open(dir);
  CHECK(store.get("b", {1}).to_floats() == std::vector<float>{3});
  CHECK(error_of([&] { store.get("a", {3}); }).find("has shape [2] but the config implies [3]") != std::string::npos);
  std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map":{"a":"part-2.safetensors"}})";
  CHECK(error_of([&] { WeightStore::open(dir); }).find("but that file has no such tensor") != std::string::npos);
  fs::remove_all(dir);
}
