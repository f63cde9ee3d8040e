// Every tensor x pipeline layout a model admits reproduces reference.json exactly (ranks are
// threads; tp collectives over shared memory, pipeline activations over UCX).
#include <doctest/doctest.h>

#include <limits>

#include "actors/local_group_executor.hpp"
#include "kernels/error.hpp"
#include "sched/batch_generator.hpp"
#include "tests/reference_cases.hpp"
#include "tests/reference_requests.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

struct Layout {
  int tp, pp;
  std::vector<int64_t> partition;
};

void check_layouts(const std::string& model, const std::vector<Layout>& layouts) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  auto cases = test::load_reference_cases(dir);
  auto requests = test::reference_requests(cases);
  for (const auto& l : layouts) {
    LocalGroupOptions o;
    o.tp = l.tp;
    o.pp = l.pp;
    o.pp_partition = l.partition;
    LocalGroupExecutor executor(dir, o);
    auto results = BatchGenerator(executor).run(requests);
    for (size_t i = 0; i < cases.size(); ++i) {
      INFO(model, " tp=", l.tp, " pp=", l.pp, " partition=", l.partition.size(), " case ", i);
      auto got = results[i].ids;
      got.resize(std::min(got.size(), cases[i].compare_first));
      CHECK(got ==
            std::vector<int32_t>(cases[i].greedy_ids.begin(), cases[i].greedy_ids.begin() + cases[i].compare_first));
    }
  }
}

std::string layout_error(const std::string& model, int tp, int pp, std::vector<int64_t> partition = {}, int ep = 1) {
  auto dir = test::shared_dir() / "models" / model;
  try {
    LocalGroupOptions o;
    o.tp = tp;
    o.pp = pp;
    o.ep = ep;
    o.pp_partition = partition;
    LocalGroupExecutor executor(dir, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("aidreams260K: tp {1,2,4} x pp {1,2,3,4}, even and uneven partitions") {
  std::vector<Layout> layouts;
  for (int tp : {1, 2, 4})
    for (int pp : {1, 2, 3, 4}) layouts.push_back({tp, pp, {}});
  layouts.push_back({2, 2, {3, 1}});
  layouts.push_back({1, 3, {1, 1, 2}});
  check_layouts("aidreams260K", layouts);
}

TEST_CASE("gqa260K: tp {1,2,4,8} x pp {1,2,3,4} (tp 8 replicates the 4 kv heads), uneven partitions") {
  std::vector<Layout> layouts;
  for (int tp : {1, 2, 4, 8})
    for (int pp : {1, 2, 3, 4}) layouts.push_back({tp, pp, {}});
  layouts.push_back({2, 3, {2, 2, 1}});
  layouts.push_back({4, 2, {4, 1}});
  check_layouts("gqa260K", layouts);
}

TEST_CASE("GGUF Q8_0 and Q4_0 files: tp x pp layouts give the ids of a single rank on the same file") {
  TROUPE_REQUIRE_SHARED(dir, "models/gguf");
  for (const char* name : {"gqa260K-q8_0.gguf", "aidreams260K-q4_0.gguf"}) {
    const auto file = dir / name;
    auto requests = test::reference_requests(test::load_gguf_reference_cases(file));
    LocalGroupExecutor single(file, LocalGroupOptions{});
    const auto expected = BatchGenerator(single).run(requests);
    // The quantized blocks stay quantized in the linear layers: well under half the f32 file's bytes.
    const std::string f32_name = std::string(name).substr(0, std::string(name).find('-')) + "-f32.gguf";
    LocalGroupExecutor f32(dir / f32_name, LocalGroupOptions{});
    CHECK(single.rank_stats()[0].weight_bytes * 2 < f32.rank_stats()[0].weight_bytes);
    // gqa260K Q8_0: every tp x pp; aidreams260K Q4_0: two layouts (the sanitizer builds run this too).
    std::vector<std::pair<int, int>> layouts = {{2, 2}, {4, 1}};
    if (std::string(name).starts_with("gqa")) layouts = {{1, 2}, {2, 1}, {2, 2}, {4, 1}, {4, 2}};
    for (auto [tp, pp] : layouts) {
      LocalGroupOptions o;
      o.tp = tp;
      o.pp = pp;
      LocalGroupExecutor executor(file, o);
      auto results = BatchGenerator(executor).run(requests);
      for (size_t i = 0; i < requests.size(); ++i) {
        INFO(name, " tp=", tp, " pp=", pp, " case ", i);
        CHECK(results[i].ids == expected[i].ids);
      }
    }
  }
}

TEST_CASE("invalid layouts fail before loading, naming the numbers") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  CHECK(layout_error("aidreams260K", 3, 1) == "num_attention_heads (4) is not divisible by tensor_parallel_size (3)");
  CHECK(layout_error("aidreams260K", 1, 5) == "pipeline_parallel_size (5) is larger than the number of layers (4)");
  CHECK(layout_error("aidreams260K", 1, 2, {2, 1}) == "pp partition sums to 3 layers but the model has 4");
  CHECK(layout_error("aidreams260K", 1, 2, {1, 1, 2}) == "pp partition has 3 stages but pipeline_parallel_size is 2");
  CHECK(layout_error("gqa260K", 16, 1) == "num_attention_heads (8) is not divisible by tensor_parallel_size (16)");
  CHECK(layout_error("aidreams260K", 0, 1) == "tensor_parallel_size (0) must be at least 1");
  // Used to overflow the sum of the stages (a partition straight from a node config).
  CHECK(layout_error("aidreams260K", 1, 2, {std::numeric_limits<int64_t>::max(), 2}) ==
        "pp partition sums to more layers than int64 counts (the model has 4)");
}

TEST_CASE("invalid expert-parallel layouts fail before loading, naming the numbers") {
  TROUPE_REQUIRE_SHARED(dir, "models/mixtral-tiny");
  CHECK(layout_error("mixtral-tiny", 3, 1, {}, 3) == "num_experts (8) is not divisible by expert_parallel_size (3)");
  CHECK(layout_error("mixtral-tiny", 4, 1, {}, 2) ==
        "expert_parallel_size (2) must equal tensor_parallel_size (4): the experts are partitioned over the tp group");
  CHECK(layout_error("qwen2moe-tiny", 1, 2, {}, 2) ==
        "expert_parallel_size (2) must equal tensor_parallel_size (1): the experts are partitioned over the tp group");
  CHECK(layout_error("mixtral-tiny", 16, 1, {}, 16) == "num_experts (8) is not divisible by expert_parallel_size (16)");
  CHECK(layout_error("aidreams260K", 2, 1, {}, 2) ==
        "expert_parallel_size (2) needs a mixture-of-experts model, but llama is dense");
}
