#pragma once
// Reads ../shared/models/<name>/reference.json cases (prompt ids, greedy ids, compare_first), and
// those of ../shared/models/gguf/reference.json per GGUF file.
#include <filesystem>
#include <string>
#include <vector>

namespace troupe::test {

struct ReferenceCase {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;
  size_t compare_first = 0;  // leading ids that are exact (all when the file does not say)
  std::string prompt_text;
  std::vector<float> last_prompt_logits;
};

std::vector<ReferenceCase> load_reference_cases(const std::filesystem::path& model_dir);
// The cases ../shared/models/gguf/reference.json holds for one of its files (weight-only references:
// each block dequantized to f32, then an f32 forward).
std::vector<ReferenceCase> load_gguf_reference_cases(const std::filesystem::path& gguf_file);

}  // namespace troupe::test
