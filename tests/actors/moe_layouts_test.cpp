// Mixture-of-experts models under every layout the issue names reproduce the references: tp=2
// (experts tensor-parallel), ep=2 (tp=2, experts partitioned, all_to_all dispatch), ep=4, ep=2 x
// pp=2, ep=2 with replicated hot experts, and wide ep = dp x tp (data-parallel attention). Ranks are threads;
// collectives over shared memory. (Invalid ep layouts: parallel_layouts_test.cpp.)
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <numeric>

#include "actors/local_group_executor.hpp"
#include "tests/moe_checks.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

struct MoeLayout {
  int tp, pp, ep;
  std::vector<int64_t> replicated = {};
  int dp = 1;
};

void check_moe_layouts(const std::string& model) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  auto cases = test::load_reference_cases(dir);
  // The last three: wide expert parallelism (ep = tp x dp, data-parallel attention) — dp 2 x tp 1,
  // dp 2 x tp 2, dp 4 x tp 1; a batch's sequences spread over the replicas, idle ones step empty.
  for (const MoeLayout& l : std::vector<MoeLayout>{{2, 1, 1},
                                                   {2, 1, 2},
                                                   {4, 1, 4},
                                                   {2, 2, 2},
                                                   {2, 1, 2, {0, 5}},
                                                   {1, 1, 2, {}, 2},
                                                   {2, 1, 4, {}, 2},
                                                   {1, 1, 4, {}, 4}}) {
    LocalGroupOptions o;
    o.tp = l.tp;
    o.pp = l.pp;
    o.ep = l.ep;
    o.replicated_experts = l.replicated;
    o.dp = l.dp;
    o.kv.num_blocks = 64;
    LocalGroupExecutor executor(dir, o);
    test::check_moe_reference(
        executor, cases,
        fmt::format("{} tp={} pp={} ep={} dp={} replicated={}", model, l.tp, l.pp, l.ep, l.dp, l.replicated.size()));
    // The load counters cover every layer and agree with the top-k count.
    auto load = executor.expert_load();
    REQUIRE(load.size() == size_t(executor.config().num_hidden_layers));
    const int64_t first = std::accumulate(load[0].begin(), load[0].end(), int64_t(0));
    CHECK(first > 0);
    for (const auto& layer : load) CHECK(std::accumulate(layer.begin(), layer.end(), int64_t(0)) == first);
    // Expert parallelism moves rows through the all_to_all; tensor parallelism does not.
    int64_t a2a_bytes = 0;
    for (const auto& r : executor.rank_stats()) a2a_bytes += r.all_to_all.bytes_sent;
    CHECK((a2a_bytes > 0) == (l.ep > 1));
  }
}

}  // namespace

TEST_CASE("mixtral-tiny: tp=2, ep=2, ep=4, ep=2 x pp=2, replicated experts and ep = dp x tp equal the reference") {
  check_moe_layouts("mixtral-tiny");
}

TEST_CASE("qwen2moe-tiny: tp=2, ep=2, ep=4, ep=2 x pp=2, replicated experts and ep = dp x tp equal the reference") {
  check_moe_layouts("qwen2moe-tiny");
}
