// The bounds receivers check on control-plane messages (actors/message_checks.hpp): each refusal
// names the field and the limit, and a message at the limit is accepted.
#include <doctest/doctest.h>

#include <limits>

#include "actors/message_checks.hpp"
#include "kernels/error.hpp"

using namespace troupe;

namespace {

ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 100;
  m.max_position_embeddings = 64;
  m.num_hidden_layers = 4;
  return m;
}

std::string submit_error(const SubmitRequest& r) {
  try {
    validate_submit(r, tiny_model());
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string step_error(const StepRequest& s, int64_t block_size = 16) {
  try {
    validate_step_request(s, block_size);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

StepRequest good_step() {
  StepRequest s;
  s.batch.token_ids = {1, 2, 3};
  s.batch.attention.block_size = 16;
  s.batch.attention.positions = {0, 1, 16};
  s.batch.attention.sequence_of_token = {0, 0, 1};
  s.batch.attention.block_tables = {{4}, {0, 7}};
  s.batch.logit_rows = {1, 2};
  s.sample_sequences = {10, 11};
  s.sampling = {SamplingParams{}, SamplingParams{0.5f, 0.9f, 5, 1}};
  return s;
}

}  // namespace

TEST_CASE("join and bootstrap bounds name what is out of range") {
  JoinRequest join{"lab", "s3cret", "a", "127.0.0.1", 1, {0, 1}, {RankHandle{}, RankHandle{}}, {}};
  CHECK(join_problem(join, 4) == "");
  auto j = join;
  j.node.assign(limits::kMaxName + 1, 'n');
  CHECK(join_problem(j, 4) == "a name longer than 256 bytes");
  j = join;
  j.secret.assign(limits::kMaxBlobBytes + 1, 's');
  CHECK(join_problem(j, 4) == "a secret longer than 1048576 bytes");
  j = join;
  j.ranks = {0, 1, 2, 3, 4};
  j.rank_actors.resize(5);
  CHECK(join_problem(j, 4) == "5 ranks offered (the cluster has 4)");
  j = join;
  j.rank_actors.pop_back();  // before admission: a node must not be half admitted
  CHECK(join_problem(j, 4) == "1 rank actors for 2 ranks");

  CHECK(bootstrap_problem(BootstrapBlob{"tp-0", 1, 2, "x"}, 4) == "");
  CHECK(bootstrap_problem(BootstrapBlob{"tp-0", 0, 5, "x"}, 4) == "exchange size 5 (the cluster has 4 ranks)");
  CHECK(bootstrap_problem(BootstrapBlob{"tp-0", 2, 2, "x"}, 4) == "rank 2 of 2");
  CHECK(bootstrap_problem(BootstrapBlob{std::string(300, 'e'), 0, 1, ""}, 4) == "exchange name too long");
}

TEST_CASE("rank progress is refused unless 0 <= done <= total <= the model's layers") {
  CHECK(rank_status_problem(RankStatus{3, 2, 4, false, "", 0}, 4, 4) == "");
  CHECK(rank_status_problem(RankStatus{4, 0, 0, false, "", 0}, 4, 4) == "no rank 4");
  CHECK(rank_status_problem(RankStatus{0, -1, 2, false, "", 0}, 4, 4) == "progress -1/2 (the model has 4 layers)");
  CHECK(rank_status_problem(RankStatus{0, 3, 2, false, "", 0}, 4, 4) == "progress 3/2 (the model has 4 layers)");
  // Two ranks at INT64_MAX used to overflow the coordinator's sum of every rank's progress.
  const int64_t huge = std::numeric_limits<int64_t>::max();
  CHECK(rank_status_problem(RankStatus{0, huge, huge, false, "", 0}, 4, 4).find("progress") == 0);
}

TEST_CASE("a step result is refused unless its times are finite and bounded, its tokens at most a batch") {
  StepResult r{0, 2, {42}, "", 0.5, 0.1, 0.1, 0.05, 1.0, 1.5};
  CHECK(step_result_problem(r, 4, 8) == "");
  auto bad = r;
  bad.rank = 4;
  CHECK(step_result_problem(bad, 4, 8) == "no rank 4");
  bad = r;
  bad.sampled.assign(9, 1);
  CHECK(step_result_problem(bad, 4, 8) == "9 sampled tokens (a micro-batch samples at most 8)");
  // An infinite time used to reach the coordinator's statuses and timelines, which CAF 0.17 then
  // never finished serialising (found by tests/fuzz/actor_messages_fuzz.cpp).
  bad = r;
  bad.end_time = std::numeric_limits<double>::infinity();
  CHECK(step_result_problem(bad, 4, 8) == "a time of inf s");
  bad = r;
  bad.compute_seconds = std::numeric_limits<double>::quiet_NaN();
  CHECK(step_result_problem(bad, 4, 8) == "a time of nan s");
  bad = r;
  bad.start_time = -2e12;  // end - start would be finite, but the sums of many could not be trusted
  CHECK(step_result_problem(bad, 4, 8) == "a time of -2000000000000 s");
}

TEST_CASE("a submit is bounded before it is tokenized: prompt, max_tokens, stop strings and ids, sampling") {
  SubmitRequest ok;
  ok.prompt_ids = {1, 2};
  ok.stop = {"\n"};
  ok.stop_token_ids = {2};
  CHECK(submit_error(ok) == "(no error)");
  auto r = ok;
  r.prompt.assign(limits::kMaxPromptBytes + 1, 'a');
  CHECK(submit_error(r) == "prompt of 16777217 bytes is longer than the limit of 16777216 bytes");
  r = ok;
  r.prompt_ids.assign(64, 1);
  CHECK(submit_error(r).find("prompt of 64 tokens does not fit the context of 64 tokens") == 0);
  r = ok;
  r.max_tokens = std::numeric_limits<int64_t>::max();  // prompt_len + max_tokens used to overflow
  CHECK(submit_error(r) == "max_tokens (9223372036854775807) is more than the limit of 2147483647");
  r.max_tokens = limits::kMaxTokens;
  CHECK(submit_error(r) == "(no error)");
  r = ok;
  r.max_tokens = 0;
  CHECK(submit_error(r) == "max_tokens (0) must be at least 1");
  r = ok;
  r.stop.assign(limits::kMaxStopStrings + 1, "x");
  CHECK(submit_error(r) == "stop holds 17 strings: at most 16");
  r = ok;
  r.stop = {std::string(limits::kMaxStopBytes + 1, 'x')};
  CHECK(submit_error(r) == "stop string of 1025 bytes is longer than the limit of 1024 bytes");
  r = ok;
  r.stop_token_ids.assign(limits::kMaxStopTokenIds + 1, 2);
  CHECK(submit_error(r) == "stop_token_ids holds 257 ids: at most 256");
  r = ok;
  r.stop_token_ids = {100};
  CHECK(submit_error(r) == "stop token id 100 is out of range for vocab_size 100");
  r = ok;
  r.temperature = 101.0f;
  CHECK(submit_error(r) == "temperature 101 must be at most 100");
  r.temperature = std::numeric_limits<float>::quiet_NaN();
  CHECK(submit_error(r) == "temperature nan must be at most 100");
  r = ok;
  r.top_p = 0.0f;
  CHECK(submit_error(r) == "top_p 0 must be in (0, 1]");
  r = ok;
  r.top_k = -1;
  CHECK(submit_error(r) == "top_k -1 must be >= 0 (0 disables it)");
}

TEST_CASE("a micro-batch whose lists disagree or point outside the batch is refused by the rank") {
  CHECK(step_error(good_step()) == "(no error)");
  auto s = good_step();
  CHECK(step_error(s, 8) == "attention: the batch is laid out in blocks of 16 slots but the kv cache's blocks hold 8");
  s.batch.attention.block_size = 0;
  CHECK(step_error(s, 0) == "attention: block_size (0) must be at least 1");
  s = good_step();
  s.batch.attention.positions.pop_back();
  CHECK(step_error(s) == "attention: 3 tokens but 2 positions and 3 sequence indices");
  s = good_step();
  s.batch.attention.sequence_of_token[2] = 2;
  CHECK(step_error(s) == "attention: token 2 belongs to sequence 2 of a batch of 2 sequences");
  s = good_step();
  s.batch.attention.positions[2] = 32;
  CHECK(step_error(s) == "attention: token 2 at position 32 lies outside its sequence's 2 blocks of 16 slots");
  s = good_step();
  s.batch.attention.block_tables[0] = {-1};
  CHECK(step_error(s) == "attention: block -1 is not a block of a kv cache");
  s = good_step();
  s.batch.logit_rows[1] = 3;
  CHECK(step_error(s) == "micro-batch 0: logit row 3 outside the batch of 3 tokens");
  s = good_step();
  s.sampling.pop_back();
  CHECK(step_error(s) == "micro-batch 0: 2 sampled sequences with 1 sampling parameters and 2 logit rows");
  s = good_step();
  s.sampling[0].top_p = 2.0f;
  CHECK(step_error(s) == "top_p 2 must be in (0, 1]");
}
