#include "model/weight_store.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include <fmt/ranges.h>

#include "kernels/error.hpp"
#include "kernels/quant_blocks.hpp"
#include "model/gguf_checkpoint.hpp"

namespace troupe {

namespace {

// A 2-D float tensor whose rows are whole 32-value blocks (what `quantize` applies to).
bool quantizable(const Tensor& t) { return t.dim() == 2 && t.size(1) % PackedWeight::kQuantBlock == 0; }

// `t` with every row's 32-value blocks quantized to `format` and dequantized again, f32.
Tensor round_trip(const Tensor& t, WeightFormat format) {
  const GgmlType type = format == WeightFormat::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0;
  Tensor f = t.to(DType::F32);  // contiguous rows of whole blocks: the tensor is one run of blocks
  std::string bytes(size_t(ggml_row_bytes(type, f.numel())), '\0');
  quantize_row(type, f.data<float>(), bytes.data(), f.numel());
  dequantize_row(type, bytes.data(), f.data<float>(), f.numel());
  return f;
}

}  // namespace

WeightStore WeightStore::open(const std::filesystem::path& model_dir, WeightFormat quantize) {
  WeightStore store;
  store.dir_ = model_dir;
  store.quantize_ = quantize;
  if (auto gguf = find_gguf_model(model_dir)) {
    GgufFile file(*gguf);
    store.gguf_ = *gguf;
    store.converted_ = gguf_weights(file, gguf_model_config(file));
    for (const auto& t : file.tensors()) {
      const auto name = hf_name_of_gguf_tensor(t.name);
      if (name && (t.type == GgmlType::Q8_0 || t.type == GgmlType::Q4_0))
        store.gguf_formats_[*name] = t.type == GgmlType::Q8_0 ? WeightFormat::Q8_0 : WeightFormat::Q4_0;
    }
    return store;
  }
  auto single = model_dir / "model.safetensors";
  auto index_path = model_dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index_path)) {
    std::ifstream in(index_path);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number overflows
      fail("{}: not valid JSON ({})", index_path.string(), e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: missing the 'weight_map' object", index_path.string());
    std::map<std::string, size_t> file_index;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("{}: weight_map['{}'] must be a file name", index_path.string(), it.key());
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        fail("{}: weight_map['{}'] names '{}' outside the model folder", index_path.string(), it.key(), file);
      if (!file_index.count(file)) {
        file_index[file] = store.files_.size();
        store.files_.push_back(std::make_shared<SafetensorsFile>(model_dir / file));
      }
      size_t f = file_index[file];
      if (!store.files_[f]->contains(it.key()))
        fail("{}: weight_map puts '{}' in {} but that file has no such tensor", index_path.string(), it.key(), file);
      store.index_[it.key()] = f;
    }
    return store;
  }
  if (!std::filesystem::exists(single))
    fail("{} holds neither model.safetensors nor model.safetensors.index.json", model_dir.string());
  store.files_.push_back(std::make_shared<SafetensorsFile>(single));
  for (const auto& [name, e] : store.files_[0]->entries()) store.index_[name] = 0;
  return store;
}

Tensor WeightStore::get(const std::string& name, const Shape& expected_shape) const {
  if (auto c = converted_.find(name); c != converted_.end()) {
    if (c->second.shape() != expected_shape)
      fail("{}: tensor '{}' ({}) has shape {} but the config implies {}", gguf_.string(), name,
           gguf_tensor_name(name).value_or("?"), shape_str(c->second.shape()), shape_str(expected_shape));
    if (quantize_ != WeightFormat::Float && !gguf_formats_.count(name) && quantizable(c->second))
      return round_trip(c->second, quantize_);
    return c->second;
  }
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: checkpoint has no tensor '{}'", dir_.string(), name);
  const auto& file = *files_[it->second];
  Tensor t = file.tensor(name);
  if (t.shape() != expected_shape)
    fail("{}: tensor '{}' has shape {} but the config implies {}", file.path().string(), name, shape_str(t.shape()),
         shape_str(expected_shape));
  if (quantize_ != WeightFormat::Float && quantizable(t)) return round_trip(t, quantize_);
  return t;
}

Tensor WeightStore::get_any_shape(const std::string& name) const {
  if (auto c = converted_.find(name); c != converted_.end()) return c->second;
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: checkpoint has no tensor '{}'", dir_.string(), name);
  return files_[it->second]->tensor(name);
}

WeightFormat WeightStore::format_of(const std::string& name) const {
  if (auto it = gguf_formats_.find(name); it != gguf_formats_.end()) return it->second;
  return contains(name) ? quantize_ : WeightFormat::Float;
}

void WeightStore::check_names(const std::set<std::string>& expected,
                              const std::vector<std::string>& ignored_suffixes) const {
  std::vector<std::string> missing, unexpected;
  for (const auto& name : expected)
    if (!contains(name)) missing.push_back(name);
  std::vector<std::string> stored;
  for (const auto& entry : index_) stored.push_back(entry.first);
  for (const auto& entry : converted_) stored.push_back(entry.first);
  for (const std::string& name : stored) {
    bool ignored = std::ranges::any_of(ignored_suffixes, [&](const std::string& s) { return name.ends_with(s); });
    if (!ignored && !expected.count(name)) unexpected.push_back(name);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s = fmt::format("{}", fmt::join(v.begin(), v.begin() + std::min<ptrdiff_t>(std::ssize(v), 5), ", "));
    return v.size() > 5 ? s + fmt::format(" and {} more", v.size() - 5) : s;
  };
  if (!missing.empty()) fail("{}: checkpoint is missing tensor(s) {}", describe(), list(missing));
  if (!unexpected.empty())
    fail("{}: checkpoint has unexpected tensor(s) {} for this model config", describe(), list(unexpected));
}

std::string WeightStore::describe() const {
  if (!gguf_.empty()) return gguf_.string();
  if (files_.size() == 1) return files_[0]->path().string();
  return fmt::format("{} ({} shards)", dir_.string(), files_.size());
}

}  // namespace troupe
