#include <doctest/doctest.h>

#include "kernels/error.hpp"
#include "model/kv_cache.hpp"
#include "sched/batch_generator.hpp"
#include "sched/kv_block_manager.hpp"

using namespace troupe;

TEST_CASE("bad requests are errors naming the value and the expectation") {
  ModelConfig c;
  c.vocab_size = 512;
  c.max_position_embeddings = 8;
  auto error_of = [&](GenerationRequest r) {
    try {
      validate_request(r, c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  GenerationRequest ok;
  ok.prompt_ids = {1, 2};
  CHECK(error_of(ok) == "(no error)");
  auto r = ok;
  r.prompt_ids = {1, 512};
  CHECK(error_of(r) == "prompt token id 512 is out of range for vocab_size 512");
  r = ok;
  r.prompt_ids.assign(8, 1);
  CHECK(error_of(r).find("prompt of 8 tokens does not fit the context of 8 tokens") == 0);
  r = ok;
  r.prompt_ids.clear();
  CHECK(error_of(r).find("the prompt is empty") == 0);
  r = ok;
  r.max_tokens = 0;
  CHECK(error_of(r) == "max_tokens (0) must be at least 1");
  r = ok;
  r.sampling.temperature = -0.5f;
  CHECK(error_of(r) == "temperature -0.5 must be >= 0");
}

TEST_CASE("a finish reason off the wire that names no reason prints as unknown") {
  CHECK(std::string(to_string(FinishReason::Length)) == "length");
  CHECK(std::string(to_string(FinishReason::None)) == "");
  // Found by tests/fuzz/actor_messages_fuzz.cpp: reason 14 in a FinishedEvent used to index past the names.
  CHECK(std::string(to_string(FinishReason(14))) == "unknown");
  CHECK(std::string(to_string(FinishReason(255))) == "unknown");
}

TEST_CASE("kv block manager hands out and takes back blocks") {
  KvBlockManager m(4, 16);
  CHECK(m.reserve(1, 20));  // 2 blocks
  CHECK(m.block_table(1).size() == 2);
  CHECK(m.num_free_blocks() == 2);
  CHECK_FALSE(m.reserve(2, 40));  // 3 blocks: too many, nothing taken
  CHECK(m.num_free_blocks() == 2);
  CHECK(m.reserve(1, 33));  // grows by one
  CHECK(m.num_free_blocks() == 1);
  m.release(1);
  CHECK(m.num_free_blocks() == 4);
  CHECK_THROWS_AS(m.block_table(1), Error);
}

TEST_CASE("absurd kv block sizes and counts are refused by the block manager and the cache") {
  CHECK_THROWS_WITH_AS(KvBlockManager(4, 0), "kv block manager needs blocks (got 4 blocks of 0 slots)", Error);
  CHECK_THROWS_WITH_AS(KvBlockManager(4, kMaxKvBlockSize + 1),
                       "kv block manager of 4 blocks of 1025 slots: at most 16777216 blocks of at most 1024 slots",
                       Error);
  // Block ids are int32 and the free list is built at once: 2^40 blocks used to be attempted.
  CHECK_THROWS_WITH_AS(KvBlockManager(int64_t(1) << 40, 16), doctest::Contains("at most 16777216 blocks"), Error);
  CHECK(KvBlockManager(4, kMaxKvBlockSize).blocks_for_tokens(kMaxKvBlockSize + 1) == 2);
  CHECK_THROWS_WITH_AS(KvCache(1, 4, 0, 1, 2), "kv cache needs at least one block of at least one slot (got 4 x 0)",
                       Error);
  CHECK_THROWS_WITH_AS(KvCache(1, 4, 4096, 1, 2), doctest::Contains("at most 1024 slots"), Error);
  // A block's bytes used to overflow int64 (and divide the budget by a negative number).
  CHECK(KvCache::blocks_for_budget(int64_t(1) << 30, int64_t(1) << 40, 1024, int64_t(1) << 20, 128) == 0);
  CHECK(KvCache::blocks_for_budget(int64_t(1) << 30, 2, 0, 4, 8) == 0);
  CHECK(KvCache::blocks_for_budget(int64_t(1) << 40, 1, 1, 1, 2) == kMaxKvBlocks);  // capped
  CHECK(KvCache::blocks_for_budget(1 << 20, 2, 16, 4, 8) == 1 << 20 >> 13);
}
