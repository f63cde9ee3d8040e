#pragma once
// WeightStore: the tensors of a Hugging Face checkpoint folder, from a single model.safetensors or
// a sharded set named by model.safetensors.index.json — or of a GGUF file (a .gguf path, or a
// folder holding one and no config.json), under Hugging Face names, dequantized to f32 at open
// (gguf_checkpoint.hpp). Lookups check the expected shape, and
// check_names() compares the whole checkpoint with what a model family expects.
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kernels/linear.hpp"
#include "model/safetensors_file.hpp"

namespace troupe {

class WeightStore {
 public:
  // quantize: Q8_0 / Q4_0 quantizes every float 2-D tensor whose rows are whole 32-value blocks,
  // as GGUF does (get() returns the dequantized values, format_of() the format linear layers pack
  // them in). A GGUF file's quantized tensors keep their own format.
  static WeightStore open(const std::filesystem::path& model_dir, WeightFormat quantize = WeightFormat::Float);

  bool contains(const std::string& name) const { return index_.count(name) != 0 || converted_.count(name) != 0; }
  // A zero-copy view; throws naming the file, the tensor and both shapes when the shape differs.
  Tensor get(const std::string& name, const Shape& expected_shape) const;
  // The tensor as stored, whatever its shape (converters); throws when absent.
  Tensor get_any_shape(const std::string& name) const;

  // The format a linear layer packs `name` in (see open()); Float for everything else.
  WeightFormat format_of(const std::string& name) const;

  // Every `expected` name must exist and every stored name must be expected (names matching an
  // `ignored` suffix are skipped). Throws listing the first few offenders.
  void check_names(const std::set<std::string>& expected, const std::vector<std::string>& ignored_suffixes) const;
  std::string describe() const;  // "model.safetensors (3 tensors)" or "4 shards"

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> index_;               // name -> files_ index
  std::map<std::string, Tensor> converted_;           // a GGUF checkpoint's tensors, owned
  std::filesystem::path gguf_;                        // that GGUF file
  std::map<std::string, WeightFormat> gguf_formats_;  // its Q8_0 / Q4_0 tensors
  WeightFormat quantize_ = WeightFormat::Float;
  std::filesystem::path dir_;
};

}  // namespace troupe
