#pragma once
// Model presets: real architecture shapes (Llama 3.2 1B, Llama 3.1 8B cut to 2 layers, a tiny
// one) and a writer that fills an HF-layout folder with random weights of that shape, for
// benchmarks and for demos without ../shared.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "kernels/dtype.hpp"

namespace troupe {

std::vector<std::string> model_preset_names();
// The config.json text of a preset; throws naming the known presets when `name` is unknown.
std::string model_preset_config_json(const std::string& name);

// Writes config.json (`config_json` as given) and model.safetensors with deterministic random
// weights of the shapes that config implies (any dense family: llama, mistral, qwen2, qwen3).
void write_random_checkpoint(const std::string& config_json, const std::filesystem::path& out_dir, DType dtype,
                             uint64_t seed, const std::function<void(int64_t, int64_t)>& on_progress = {});

// Writes config.json and model.safetensors with deterministic random weights (seeded).
void write_random_model(const std::string& preset, const std::filesystem::path& out_dir, DType dtype, uint64_t seed,
                        const std::function<void(int64_t, int64_t)>& on_progress = {});

}  // namespace troupe
