// Continuous batching: preemption under a small KV budget, chunked prefill and pipeline
// micro-batching change nothing in the greedy outputs.
#include <doctest/doctest.h>

#include <limits>
#include <random>

#include "kernels/error.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"
#include "sched/scheduler.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

std::vector<GenerationRequest> mixed_requests(int n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng{seed};
  std::vector<GenerationRequest> out;
  for (int i = 0; i < n; ++i) {
    GenerationRequest r;
    r.prompt_ids.push_back(1);
    int len = std::uniform_int_distribution<int>(0, 30)(rng);
    for (int t = 0; t < len; ++t)
      r.prompt_ids.push_back(std::uniform_int_distribution<int32_t>(3, int32_t(vocab) - 1)(rng));
    r.max_tokens = std::uniform_int_distribution<int>(1, 40)(rng);
    r.ignore_eos = i % 2 == 0;
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("a KV budget small enough to force preemption changes no output") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  LocalModelExecutor roomy(dir);
  KvCacheOptions small;
  small.num_blocks = 8;  // 128 slots for 24 requests of up to ~70 tokens each
  LocalModelExecutor tight(dir, small);
  auto requests = mixed_requests(24, 512, 3);
  BatchGenerator alone(roomy), together(tight, 64, 256);
  auto batched = together.run(requests);
  CHECK(together.preemptions() > 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto single = alone.run({requests[i]});
    CAPTURE(i);
    CHECK(batched[i].ids == single[0].ids);
    CHECK(batched[i].finish_reason == single[0].finish_reason);
  }
}

TEST_CASE("chunked prefill (4 tokens a step) gives the same ids as whole prompts") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  LocalModelExecutor executor(dir);
  auto requests = mixed_requests(6, 512, 5);
  auto whole = BatchGenerator(executor, 64, 4096).run(requests);
  auto chunked = BatchGenerator(executor, 3, 4).run(requests);
  for (size_t i = 0; i < requests.size(); ++i) CHECK(whole[i].ids == chunked[i].ids);
}

TEST_CASE("pipeline depth splits the live sequences into overlapping micro-batches") {
  ModelConfig c;
  c.vocab_size = 100;
  c.max_position_embeddings = 64;
  c.eos_token_ids = {2};
  Scheduler s(c, 64, 16, SchedulerConfig{64, 512, 2});
  GenerationRequest r;
  r.prompt_ids = {1, 5, 6};
  r.max_tokens = 3;
  for (int i = 0; i < 4; ++i) s.add(i, r);
  auto a = s.schedule();
  auto b = s.schedule();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->chunks.size() == 2);
  CHECK(b->chunks.size() == 2);
  CHECK(a->chunks[0].sequence_id != b->chunks[0].sequence_id);
  CHECK_FALSE(s.schedule());  // depth 2: both slots busy
  auto events = s.complete(*a, {7, 8});
  CHECK(events.size() == 2);
  auto c2 = s.schedule();  // a's sequences decode while b is still in flight
  REQUIRE(c2);
  CHECK(c2->chunks.size() == 2);
  CHECK(c2->chunks[0].length == 1);
  CHECK(c2->batch.token_ids == std::vector<int32_t>{7, 8});
}

TEST_CASE("abort frees the blocks at once, also while in flight") {
  ModelConfig c;
  c.vocab_size = 100;
  c.max_position_embeddings = 400;
  Scheduler s(c, 4, 16, SchedulerConfig{});
  GenerationRequest r;
  r.prompt_ids = {1, 2, 3};
  r.max_tokens = 20;
  s.add(7, r);
  auto mb = s.schedule();
  REQUIRE(mb);
  CHECK(s.blocks().num_free_blocks() == 3);
  CHECK(s.abort(7));
  CHECK(s.blocks().num_free_blocks() == 4);
  CHECK(s.complete(*mb, {9}).empty());  // the late result is ignored
  CHECK_FALSE(s.abort(7));
  CHECK_FALSE(s.has_unfinished());
  GenerationRequest big;
  big.prompt_ids = {1};
  big.max_tokens = 200;
  CHECK_THROWS_WITH_AS(s.add(8, big), doctest::Contains("needing 13 kv blocks, but the cache holds only 4"), Error);
}

TEST_CASE("a rank's sampled tokens outside the vocabulary are refused and change nothing") {
  ModelConfig c;
  c.vocab_size = 100;
  c.max_position_embeddings = 64;
  Scheduler s(c, 8, 16, SchedulerConfig{});
  GenerationRequest r;
  r.prompt_ids = {1, 2, 3};
  r.max_tokens = 4;
  s.add(7, r);
  auto mb = s.schedule();
  REQUIRE(mb);
  CHECK_THROWS_WITH_AS(s.complete(*mb, {100}), doctest::Contains("sampled token 100, outside the vocabulary of 100"),
                       Error);
  CHECK_THROWS_WITH_AS(s.complete(*mb, {-1}), doctest::Contains("sampled token -1, outside the vocabulary of 100"),
                       Error);
  CHECK(s.find(7)->tokens.size() == 3);  // nothing appended: the micro-batch is still in flight
  auto events = s.complete(*mb, {99});
  REQUIRE(events.size() == 1);
  CHECK(events[0].token == 99);
}

TEST_CASE("max_tokens near INT64_MAX means to the end of the context, without overflow") {
  ModelConfig c;
  c.vocab_size = 100;
  c.max_position_embeddings = 64;
  Scheduler s(c, 8, 16, SchedulerConfig{});
  GenerationRequest r;
  r.prompt_ids = {1, 2, 3};
  r.max_tokens = std::numeric_limits<int64_t>::max();
  s.add(7, r);
  CHECK(s.find(7)->token_limit == 64);
}
