#pragma once
// Reads ../shared/models/<name>/reference.json cases (prompt ids, greedy ids, compare_first).
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

}  // namespace troupe::test
