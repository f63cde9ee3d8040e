#include "tests/reference_cases.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace troupe::test {

namespace {

std::vector<ReferenceCase> parse_cases(const nlohmann::json& list, const std::filesystem::path& path) {
  std::vector<ReferenceCase> cases;
  for (const auto& c : list) {
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

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open {}", path.string());
  return nlohmann::json::parse(in);
}

}  // namespace

std::vector<ReferenceCase> load_reference_cases(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "reference.json";
  return parse_cases(read_json(path).at("cases"), path);
}

std::vector<ReferenceCase> load_gguf_reference_cases(const std::filesystem::path& gguf_file) {
  const auto path = gguf_file.parent_path() / "reference.json";
  const auto j = read_json(path);
  const auto name = gguf_file.filename().string();
  if (!j.at("files").contains(name)) fail("{} has no cases for {}", path.string(), name);
  return parse_cases(j["files"][name].at("cases"), path);
}

}  // namespace troupe::test
