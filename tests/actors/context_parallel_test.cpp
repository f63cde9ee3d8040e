// Context parallelism (ring attention, Ulysses, both): every cp layout, alone and with tp=2 or pp=2,
// reproduces reference.json's greedy ids (long prompts included) and the single-rank prompt logits
// within 1e-4; invalid degrees fail before loading, naming the values. Ranks are threads; the ring and
// ulysses exchanges go through shared memory, pipeline activations through UCX.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <nlohmann/json.hpp>

#include "actors/local_group_executor.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "model/model_presets.hpp"
#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"
#include "tests/reference_cases.hpp"
#include "tests/reference_requests.hpp"
#include "tests/request_load.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using namespace std::chrono_literals;

namespace {

struct CpLayout {
  int ring, ulysses, tp = 1, pp = 1;
};

LocalGroupOptions options_of(const CpLayout& l) {
  LocalGroupOptions o;
  o.tp = l.tp;
  o.pp = l.pp;
  o.cp = l.ring * l.ulysses;
  o.ring_degree = l.ring;
  o.ulysses_degree = l.ulysses;
  return o;
}

std::string describe(const CpLayout& l) {
  return fmt::format("ring {} x ulysses {}, tp {}, pp {}", l.ring, l.ulysses, l.tp, l.pp);
}

// Every reference case all at once (one batch; then again with prompts chunked into 64-token steps,
// so later chunks attend to context cached by earlier steps), and the long prompts alone.
void check_reference_ids(const std::string& model, const std::vector<CpLayout>& layouts) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  const auto cases = test::load_reference_cases(dir);
  const auto requests = test::reference_requests(cases);
  auto expect = [&](const std::vector<GenerationResult>& got, size_t first, const char* how) {
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& c = cases[first + i];
      INFO(how, " case ", first + i, " (prompt of ", c.prompt_ids.size(), " tokens)");
      auto ids = got[i].ids;
      ids.resize(std::min(ids.size(), c.compare_first));
      CHECK(ids == std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + int64_t(c.compare_first)));
    }
  };
  for (const auto& l : layouts) {
    CAPTURE(describe(l));
    LocalGroupExecutor executor(dir, options_of(l));
    expect(BatchGenerator(executor).run(requests), 0, "all at once");
    expect(BatchGenerator(executor, 256, 64).run(requests), 0, "all at once, 64-token prefill chunks");
    for (size_t i = 0; i < requests.size(); ++i)  // the long prompts alone: one sequence split over the ranks
      if (cases[i].prompt_ids.size() >= 64) expect(BatchGenerator(executor).run({requests[i]}), i, "alone");
  }
}

// One prefill step of `prompt` with every position's logits wanted.
ForwardBatch prefill_batch(const std::vector<int32_t>& prompt, int64_t block_size) {
  ForwardBatch b;
  b.token_ids = prompt;
  b.attention.block_size = block_size;
  b.attention.block_tables.push_back({});
  for (int32_t i = 0; i < int32_t((prompt.size() + size_t(block_size) - 1) / size_t(block_size)); ++i)
    b.attention.block_tables[0].push_back(i);
  for (size_t t = 0; t < prompt.size(); ++t) {
    b.attention.positions.push_back(int32_t(t));
    b.attention.sequence_of_token.push_back(0);
    b.logit_rows.push_back(int64_t(t));
  }
  return b;
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::abs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}

// Prompt logits of every position, cp layouts against one rank, for prompts of `lengths` tokens.
void check_prompt_logits(const std::filesystem::path& dir, const std::vector<CpLayout>& layouts,
                         const std::vector<int>& lengths) {
  LocalModelExecutor single(dir);
  const int64_t vocab = single.config().vocab_size;
  std::vector<std::vector<int32_t>> prompts;
  for (int n : lengths) {
    std::vector<int32_t> p{1};
    for (int i = 1; i < n; ++i) p.push_back(int32_t(3 + (i * 7919 + n) % (vocab - 3)));
    prompts.push_back(p);
  }
  std::vector<Tensor> want;
  for (const auto& p : prompts) want.push_back(single.execute(prefill_batch(p, single.kv_block_size())).clone());
  for (const auto& l : layouts) {
    CAPTURE(describe(l));
    LocalGroupExecutor executor(dir, options_of(l));
    for (size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(prompts[i].size());
      const Tensor got = executor.execute(prefill_batch(prompts[i], executor.kv_block_size()));
      CHECK(max_abs_difference(got, want[i]) < 1e-4);
    }
  }
}

std::string cp_error(const std::string& model, int cp, int ring, int ulysses, int tp = 1) {
  try {
    LocalGroupOptions o;
    o.tp = tp;
    o.cp = cp;
    o.ring_degree = ring;
    o.ulysses_degree = ulysses;
    LocalGroupExecutor executor(test::shared_dir() / "models" / model, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A `troupe cluster` of one process per rank: the reference cases one by one and all at once.
void check_cluster(const CpLayout& l) {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  CAPTURE(describe(l));
  ClusterSpec spec;
  spec.model = dir;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.tp = l.tp;
  spec.pp = l.pp;
  spec.extra = fmt::format("cp = {}\nring_degree = {}\nulysses_degree = {}\n", l.ring * l.ulysses, l.ring, l.ulysses);
  spec.ranks_per_node.assign(size_t(l.tp * l.pp * l.ring * l.ulysses), 1);
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto cases = test::load_reference_cases(dir);
  const auto requests = test::reference_requests(cases, cases.size());
  auto expect = [&](const FinishedEvent& e, size_t i) { test::check_reference_ids(e, cases[i], i); };
  for (size_t i = 0; i < requests.size(); ++i) expect(client->generate(requests[i], {}, test::scaled(120s)), i);
  const auto together = test::RequestLoad(*client, requests).wait(300s, cluster);
  for (size_t i = 0; i < requests.size(); ++i) expect(together[i], i);
}

}  // namespace

TEST_CASE("gqa260K: ring 2 x pp 2 and ulysses 2 x tp 2 as troupe clusters of 4 processes give the reference ids") {
  check_cluster({2, 1, 1, 2});
  check_cluster({1, 2, 2, 1});
}

TEST_CASE(
    "gqa260K: context parallel alone (ring 2 and 4, ulysses 2 and 4, ring 2 x ulysses 2) gives the reference ids") {
  check_reference_ids("gqa260K", {{2, 1}, {1, 2}, {4, 1}, {1, 4}, {2, 2}});
}

TEST_CASE("gqa260K: context parallel with tp=2 (ring 2 and 4, ulysses 2 and 4, 2 x 2) gives the reference ids") {
  check_reference_ids("gqa260K", {{2, 1, 2}, {1, 2, 2}, {4, 1, 2}, {1, 4, 2}, {2, 2, 2}});
}

TEST_CASE("gqa260K: context parallel with pp=2 (ring 2 and 4, ulysses 2 and 4, 2 x 2) gives the reference ids") {
  check_reference_ids("gqa260K", {{2, 1, 1, 2}, {1, 2, 1, 2}, {4, 1, 1, 2}, {1, 4, 1, 2}, {2, 2, 1, 2}});
}

TEST_CASE("mixture of experts under context parallelism: reference ids, and the cp ranks' expert loads add up") {
  check_reference_ids("mixtral-tiny", {{2, 1}, {1, 2}});
  check_reference_ids("qwen2moe-tiny", {{2, 1}, {1, 2, 1, 2}});
  TROUPE_REQUIRE_SHARED(dir, "models/mixtral-tiny");
  const auto requests = test::reference_requests(test::load_reference_cases(dir));
  std::vector<std::vector<int64_t>> loads[2];
  for (int cp : {1, 2}) {
    LocalGroupOptions o;
    o.cp = o.ring_degree = cp;
    LocalGroupExecutor executor(dir, o);
    BatchGenerator(executor).run(requests);
    loads[cp - 1] = executor.expert_load();
  }
  CHECK(loads[0] == loads[1]);  // every token routed once, whichever cp rank held it
  CHECK_FALSE(loads[0].empty());
}

TEST_CASE(
    "context parallel prompt logits equal one rank's within 1e-4, greedy ids too (gqa260K and the long-context "
    "preset)") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  const std::vector<CpLayout> layouts{{2, 1},    {1, 2},    {4, 1},       {1, 4},      {2, 2},
                                      {2, 1, 2}, {1, 2, 2}, {2, 1, 1, 2}, {2, 2, 1, 2}};
  check_prompt_logits(dir, layouts, {64, 200, 500});
  const auto preset = std::filesystem::temp_directory_path() / fmt::format("troupe_cp_preset_{}", ::getpid());
  write_random_model("long-context", preset, DType::F32, 11);
  check_prompt_logits(preset, {{2, 1}, {1, 2}, {2, 2}}, {64, 333, 500});
  // Greedy continuations of long prompts (prefill in 128-token chunks, then decode) equal one rank's.
  std::vector<GenerationRequest> requests;
  for (int n : {64, 333, 500}) {
    GenerationRequest r;
    for (int i = 0; i < n; ++i) r.prompt_ids.push_back(int32_t(3 + (i * 104729 + n) % 500));
    r.max_tokens = 24;
    r.ignore_eos = true;
    requests.push_back(r);
  }
  LocalModelExecutor single(preset);
  const auto want = BatchGenerator(single, 256, 128).run(requests);
  for (const CpLayout& l : {CpLayout{2, 1, 1, 2}, CpLayout{1, 2, 2}, CpLayout{2, 2}}) {
    CAPTURE(describe(l));
    LocalGroupExecutor executor(preset, options_of(l));
    const auto got = BatchGenerator(executor, 256, 128).run(requests);
    for (size_t i = 0; i < requests.size(); ++i) CHECK(got[i].ids == want[i].ids);
  }
  std::filesystem::remove_all(preset);
}

TEST_CASE("invalid context-parallel degrees fail before loading, naming the values") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  CHECK(cp_error("gqa260K", 4, 2, 1) ==
        "ring_degree (2) x ulysses_degree (1) must equal the context parallel size (cp = 4)");
  CHECK(cp_error("gqa260K", 0, 1, 1) == "context_parallel_size (cp = 0) must be at least 1");
  CHECK(cp_error("gqa260K", 16, 1, 16) ==
        "ulysses_degree 16 does not divide the 8 query heads a tensor-parallel rank holds (num_attention_heads 8, "
        "num_key_value_heads 4, tensor_parallel_size 1)");
  CHECK(cp_error("gqa260K", 8, 1, 8, 2) ==
        "ulysses_degree 8 does not divide the 4 query heads a tensor-parallel rank holds (num_attention_heads 8, "
        "num_key_value_heads 4, tensor_parallel_size 2)");
  CHECK(cp_error("aidreams260K", 3, 1, 3) ==
        "ulysses_degree 3 does not divide the 4 query heads a tensor-parallel rank holds (num_attention_heads 4, "
        "num_key_value_heads 4, tensor_parallel_size 1)");
}
