#include <doctest/doctest.h>

#include "comm/group_coordinator.hpp"
#include "comm/group_factory.hpp"
#include "comm/shm_communicator.hpp"
#include "kernels/error.hpp"
#include "tests/comm/multi_rank.hpp"

using namespace troupe;
using namespace troupe::test;

TEST_CASE("global rank, local rank and rank in group as in the seeds' table") {
  // A group of size 4 across two nodes of two devices each.
  RankGroups world{{0, 1, 2, 3}};
  for (int process = 0; process < 4; ++process) {
    int node = process / 2, local_rank = process % 2;
    GroupCoordinator g("world", world, process, local_rank);
    CHECK(g.rank() == process);
    CHECK(g.local_rank() == process - node * 2);
    CHECK(g.rank_in_group() == process);
    CHECK(g.world_size() == 4);
  }
  // In a dp group {1, 5} global rank 5 is rank 1 in the group and may be device 1 on its node.
  GroupCoordinator dp("dp", {{0, 4}, {1, 5}, {2, 6}, {3, 7}}, 5, 1);
  CHECK(dp.ranks() == std::vector<int>{1, 5});
  CHECK(dp.rank_in_group() == 1);
  CHECK(dp.local_rank() == 1);
  CHECK(dp.first_rank() == 1);
  CHECK(dp.last_rank() == 5);
  CHECK(dp.is_last_rank());
  CHECK_FALSE(dp.is_first_rank());
  CHECK(dp.next_rank() == 1);
  CHECK(dp.prev_rank() == 1);
}

TEST_CASE("next and previous ranks wrap around the pipeline group") {
  GroupCoordinator pp("pp", {{0, 2, 4, 6}, {1, 3, 5, 7}}, 3, 1);
  CHECK(pp.ranks() == std::vector<int>{1, 3, 5, 7});
  CHECK(pp.next_rank() == 5);
  CHECK(pp.prev_rank() == 1);
  GroupCoordinator last("pp", {{0, 2, 4, 6}, {1, 3, 5, 7}}, 7, 1);
  CHECK(last.next_rank() == 1);
  CHECK(last.group_index_of(5) == 2);
  CHECK_THROWS_WITH_AS(last.group_index_of(2), doctest::Contains("group 'pp': rank 2 is not a member of [1, 3, 5, 7]"),
                       Error);
  CHECK_THROWS_WITH_AS(GroupCoordinator("tp", {{0, 1}}, 3, 0), doctest::Contains("rank 3 is in none of its 1 groups"),
                       Error);
  CHECK_THROWS_WITH_AS(last.barrier(), doctest::Contains("no communicator attached"), Error);
}

TEST_CASE("group coordinator gathers and scatters along a dimension over shm") {
  std::string segment = unique_name("gc");
  auto outcomes = run_ranks(2, [&](int rank) {
    // Global ranks 4 and 6 form this tp group (a group that does not start at 0).
    GroupCoordinator tp("tp", {{0, 2}, {4, 6}}, 4 + 2 * rank, rank);
    tp.set_communicator(
        std::make_shared<ShmCommunicator>(ShmOptions{{"tp", rank, 2, std::chrono::seconds(20)}, segment}));
    // [2, 3] per rank, values 10*rank + i; gathering along dim 1 gives [2, 6].
    std::vector<float> mine;
    for (int i = 0; i < 6; ++i) mine.push_back(float(10 * rank + i));
    Tensor x = Tensor::from_floats(mine, {2, 3});
    Tensor cols = tp.all_gather(x, 1);
    std::vector<float> want_cols{0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15};
    if (cols.shape() != Shape{2, 6} || cols.to_floats() != want_cols) fail("all_gather dim 1 gave {}", cols.describe());
    Tensor rows = tp.all_gather(x, 0);
    if (rows.shape() != Shape{4, 3}) fail("all_gather dim 0 gave {}", rows.describe());
    // reduce_scatter along dim 1 of [2, 4]: rank r keeps columns [2r, 2r+2) summed over ranks.
    Tensor y = Tensor::from_floats({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
    Tensor part = tp.reduce_scatter(y, 1);
    std::vector<float> want_part = rank == 0 ? std::vector<float>{2, 4, 10, 12} : std::vector<float>{6, 8, 14, 16};
    if (part.shape() != Shape{2, 2} || part.to_floats() != want_part)
      fail("reduce_scatter dim 1 gave {}", part.describe());
    // send/recv by global rank, defaulting to the next / previous rank of the group.
    Tensor msg = Tensor::from_floats({float(rank)}, {1});
    if (rank == 0) {
      tp.send(msg);
    } else {
      tp.recv(msg, 4);
      if (msg.to_floats()[0] != 0.0f) fail("recv from global rank 4 got {}", msg.to_floats()[0]);
    }
    Tensor b = Tensor::from_floats({float(rank + 1)}, {1});
    tp.broadcast(b, 6);
    if (b.to_floats()[0] != 2.0f) fail("broadcast from global rank 6 got {}", b.to_floats()[0]);
    Tensor s = Tensor::from_floats({1.0f}, {1});
    tp.all_reduce_async(s).wait();
    if (s.to_floats()[0] != 2.0f) fail("all_reduce_async gave {}", s.to_floats()[0]);
    tp.barrier();
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

TEST_CASE("a communicator must match the group's size and position") {
  std::string segment = unique_name("gc-mismatch");
  auto comm = std::make_shared<ShmCommunicator>(ShmOptions{{"tp", 0, 1, std::chrono::seconds(5)}, segment});
  CHECK_THROWS_WITH_AS(GroupCoordinator("tp", {{0, 1}}, 0, 0, comm),
                       doctest::Contains("communicator is rank 0 of 1, but global rank 0 is rank 0 of 2"), Error);
  GroupCoordinator solo("tp", {{0}}, 0, 0, comm);
  Tensor t = Tensor::from_floats({3}, {1});
  solo.all_reduce(t);  // a group of one: the tensor is its own sum
  CHECK(t.to_floats()[0] == 3.0f);
}

TEST_CASE("tp x pp groups built per thread: tp all_reduce inside, pp send/recv between stages") {
  // World 4 = tp 2 x pp 2, order tp-pp: tp groups {0,1},{2,3}; pp groups {0,2},{1,3}. One thread
  // per rank, as a CPU tensor-parallel forward pass would run.
  RankGenerator gen(2, 1, 2, 1, 1, "tp-pp");
  std::string job = unique_name("tp-pp");
  std::string errors = run_rank_threads(4, [&](int r) {
    GroupCoordinator tp = make_shm_group(job, "tp", gen.get_ranks("tp"), r, r % 2, std::chrono::seconds(20));
    GroupCoordinator pp = make_shm_group(job, "pp", gen.get_ranks("pp"), r, r % 2, std::chrono::seconds(20));
    Tensor h = Tensor::from_floats({float(r), 1.0f}, {2});
    tp.all_reduce(h);  // stage 0: 0+1, stage 1: 2+3
    if (pp.is_first_rank()) {
      pp.send(h);
    } else {
      Tensor got = Tensor::zeros({2}, DType::F32);
      pp.recv(got);
      if (got.to_floats() != std::vector<float>{1.0f, 2.0f}) fail("stage 1 rank {} got {}", r, got.to_floats()[0]);
      if (h.to_floats() != std::vector<float>{5.0f, 2.0f}) fail("stage 1 tp sum on rank {} is {}", r, h.to_floats()[0]);
    }
  });
  CHECK_MESSAGE(errors.empty(), errors);
}
