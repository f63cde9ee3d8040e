#include <doctest/doctest.h>

#include "comm/rank_generator.hpp"
#include "kernels/error.hpp"

using namespace troupe;

TEST_CASE("the seeds' worked example: world 8, order tp-pp-dp, sizes 2-2-2") {
  RankGenerator gen(/*tp=*/2, /*sp=*/1, /*pp=*/2, /*cfg=*/1, /*dp=*/2, "tp-pp-dp");
  CHECK(gen.world_size() == 8);
  CHECK(gen.get_ranks("dp") == RankGroups{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
  CHECK(gen.get_ranks("tp") == RankGroups{{0, 1}, {2, 3}, {4, 5}, {6, 7}});
  CHECK(gen.get_ranks("pp") == RankGroups{{0, 2}, {1, 3}, {4, 6}, {5, 7}});
  CHECK(gen.get_ranks("tp-pp") == RankGroups{{0, 1, 2, 3}, {4, 5, 6, 7}});
}

TEST_CASE("the seeds' worked example: parallel sizes [2, 3, 4] with mask [F, T, F]") {
  RankGroups dp = generate_masked_orthogonal_rank_groups(24, {2, 3, 4}, {false, true, false});
  REQUIRE(dp.size() == 8);
  CHECK(dp[0] == std::vector<int>{0, 2, 4});
  CHECK(dp[1] == std::vector<int>{1, 3, 5});
  CHECK(dp[7] == std::vector<int>{19, 21, 23});
}

TEST_CASE("global rank = tp_rank + dp_rank * tp + pp_rank * tp * dp for order tp-dp-pp") {
  const int tp = 2, dp = 3, pp = 2;
  RankGenerator gen(tp, 1, pp, 1, dp, "tp-dp-pp");
  RankGroups tp_groups = gen.get_ranks("tp"), dp_groups = gen.get_ranks("dp"), pp_groups = gen.get_ranks("pp");
  for (int p = 0; p < pp; ++p)
    for (int d = 0; d < dp; ++d)
      for (int t = 0; t < tp; ++t) {
        int rank = t + d * tp + p * tp * dp;
        CHECK(tp_groups[size_t(d + p * dp)][size_t(t)] == rank);
        CHECK(dp_groups[size_t(t + p * tp)][size_t(d)] == rank);
        CHECK(pp_groups[size_t(t + d * tp)][size_t(p)] == rank);
      }
  // "tp-dp" spans both: one group per pipeline stage.
  CHECK(gen.get_ranks("tp-dp") == RankGroups{{0, 1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 11}});
}

TEST_CASE("groups of every kind are orthogonal partitions of the world") {
  RankGenerator gen(2, 2, 2, 1, 2, "tp-sp-pp-cfg-dp", /*rank_offset=*/0);
  for (const char* token : {"tp", "sp", "pp", "dp", "cfg", "tp-sp", "sp-dp", "tp-sp-cfg-dp"}) {
    std::vector<int> seen(16, 0);
    for (const auto& g : gen.get_ranks(token))
      for (int r : g) seen[size_t(r)]++;
    CHECK_MESSAGE(seen == std::vector<int>(16, 1), token);
  }
  // EP spans tp x sp x cfg x dp: one group of 8 per pipeline stage.
  RankGroups ep = gen.ep_ranks();
  CHECK(ep.size() == 2);
  CHECK(ep[0].size() == 8);
  CHECK(ep[0] == std::vector<int>{0, 1, 2, 3, 8, 9, 10, 11});
}

TEST_CASE("rank_offset shifts every group and missing size-1 dimensions are appended") {
  RankGenerator gen(2, 1, 1, 1, 1, "tp", 4);
  CHECK(gen.order() == "tp-sp-pp-cfg-dp");
  CHECK(gen.get_ranks("tp") == RankGroups{{4, 5}});
  CHECK(gen.get_ranks("dp") == RankGroups{{4}, {5}});
}

TEST_CASE("rank generator validation errors") {
  CHECK_THROWS_WITH_AS(RankGenerator(2, 1, 2, 1, 1, "tp"),
                       doctest::Contains("the size of pp is 2, but parallel order 'tp'"), Error);
  CHECK_THROWS_WITH_AS(RankGenerator(2, 1, 1, 1, 1, "tp-xp"), doctest::Contains("unknown dimension 'xp'"), Error);
  CHECK_THROWS_WITH_AS(RankGenerator(2, 1, 1, 1, 1, "tp-tp"), doctest::Contains("names tp twice"), Error);
  CHECK_THROWS_WITH_AS(RankGenerator(0, 1, 1, 1, 1, "tp"), doctest::Contains("parallel size tp is 0"), Error);
  CHECK_THROWS_WITH_AS(generate_masked_orthogonal_rank_groups(10, {2, 3}, {true, false}),
                       doctest::Contains("multiply to 6, but the world size is 10"), Error);
  // Sizes that do not multiply to (divide) the world, and wrong explicit ulysses x ring sizes.
  CHECK_THROWS_WITH_AS(validate_parallel_degrees(6, 4, 1, 1, 1, 1, 1, 1),
                       doctest::Contains("world_size (6) is not equal to tensor_parallel_degree (4)"), Error);
  CHECK_THROWS_WITH_AS(
      validate_parallel_degrees(8, 1, 4, 1, 1, 2, 2, 3),
      doctest::Contains("ulysses_degree (2) x ring_degree (3) must equal the sequence parallel degree (4)"), Error);
  CHECK_NOTHROW(validate_parallel_degrees(8, 1, 4, 1, 1, 2, 2, 2));
}

TEST_CASE("ulysses and ring sub-groups of a sequence-parallel group") {
  RankGenerator gen(1, 4, 1, 1, 2, "tp-sp-pp-cfg-dp");
  RankGroups sp = gen.get_ranks("sp");
  REQUIRE(sp == RankGroups{{0, 1, 2, 3}, {4, 5, 6, 7}});
  // Ulysses low: ulysses groups are contiguous, ring groups strided.
  SequenceParallelGroups low = split_sequence_parallel(sp[1], /*ulysses=*/2, /*ring=*/2, true);
  CHECK(low.ulysses == RankGroups{{4, 5}, {6, 7}});
  CHECK(low.ring == RankGroups{{4, 6}, {5, 7}});
  // The opposite: ring groups contiguous, ulysses strided.
  SequenceParallelGroups high = split_sequence_parallel(sp[0], 2, 2, false);
  CHECK(high.ring == RankGroups{{0, 1}, {2, 3}});
  CHECK(high.ulysses == RankGroups{{0, 2}, {1, 3}});
  SequenceParallelGroups uneven = split_sequence_parallel({0, 1, 2, 3, 4, 5}, 3, 2, true);
  CHECK(uneven.ulysses == RankGroups{{0, 1, 2}, {3, 4, 5}});
  CHECK(uneven.ring == RankGroups{{0, 3}, {1, 4}, {2, 5}});
  CHECK_THROWS_WITH_AS(
      split_sequence_parallel(sp[0], 3, 2, true),
      doctest::Contains("ulysses_degree (3) x ring_degree (2) must equal the size of the sequence parallel group (4)"),
      Error);
}
