#include <doctest/doctest.h>

#include "kernels/error.hpp"
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
