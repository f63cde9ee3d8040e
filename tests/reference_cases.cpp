#include "tests/reference_cases.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace troupe::test {

std::vector<ReferenceCase> load_reference_cases(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "reference.json";
  std::ifstream in(path);
  if (!in) fail("cannot open {}", path.string());
  auto j = nlohmann::json::parse(in);
  std::vector<ReferenceCase> cases;
  for (const auto& c : j.at("cases")) {
    ReferenceCase rc;
    rc.prompt_ids = c.at("prompt_ids").get<std::vector<int32_t>>();
    rc.greedy_ids = c.at("greedy_ids").get<std::vector<int32_t>>();
    rc.compare_first = c.value("compare_first", rc.greedy_ids.size());
    rc.prompt_text = c.value("prompt_text", "");
    if (c.contains("last_prompt_logits")) rc.last_prompt_logits = c["last_prompt_logits"].get<std::vector<float>>();
    cases.push_back(std::move(rc));
  }
  if (cases.empty()) fail("{} holds no cases: a reference file must test something", path.string());
  return cases;
}

}  // namespace troupe::test
