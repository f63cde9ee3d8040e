// Wide expert parallelism with data-parallel attention (ep = dp x tp): each replica attends to its own
// requests with its own KV cache while the MoE layers dispatch over every replica's ranks. Reference
// ids for mixtral-tiny and qwen2moe-tiny, requests one by one (every one lands on replica 0 and the
// other replicas run empty steps in lockstep: an idle replica must not hang the busy one) and all at
// once (spread over the replicas); in one process (InProcessCluster) and as one process per rank.
#include <doctest/doctest.h>

#include "actors/in_process_cluster.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "model/parallel_layout.hpp"
#include "tests/reference_cases.hpp"
#include "tests/request_load.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

struct Wide {
  int dp, tp;
};

ClusterSpec spec_of(const std::filesystem::path& dir, const Wide& l) {
  ClusterSpec spec;
  spec.model = dir;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.tp = l.tp;
  spec.dp = l.dp;
  spec.ep = l.tp * l.dp;
  spec.ranks_per_node.assign(size_t(l.tp * l.dp), 1);
  return spec;
}

// One by one, then all at once; every id as the reference's compare_first.
void check_requests(Client& client, const std::vector<test::ReferenceCase>& cases) {
  const auto requests = test::reference_requests(cases, cases.size());
  auto expect = [&](const FinishedEvent& e, size_t i) { test::check_reference_ids(e, cases[i], i); };
  for (size_t i = 0; i < requests.size(); ++i) expect(client.generate(requests[i], {}, 120s), i);
  const ClusterStatus alone = client.status();
  CHECK(alone.dummy_steps > 0);  // the idle replicas stepped with the busy one
  const auto together = test::RequestLoad(client, requests).wait(300s);
  for (size_t i = 0; i < requests.size(); ++i) expect(together[i], i);
}

void check_in_process(const std::string& model, const std::vector<Wide>& layouts) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  const auto cases = test::load_reference_cases(dir);
  for (const Wide& l : layouts) {
    CAPTURE(model);
    CAPTURE(l.dp);
    CAPTURE(l.tp);
    ClusterSpec spec = spec_of(dir, l);
    spec.ranks_per_node = {l.tp * l.dp};
    InProcessCluster cluster(ClusterConfig::parse(cluster_toml(spec, 0), "in-process.toml"));
    Client client(cluster.system(), cluster.coordinator());
    client.wait_until_ready(60s);
    check_requests(client, cases);
  }
}

}  // namespace

TEST_CASE("mixtral-tiny: ep = dp x tp (dp 2 x tp 1, dp 2 x tp 2, dp 4 x tp 1) in one process gives the reference ids") {
  check_in_process("mixtral-tiny", {{2, 1}, {2, 2}, {4, 1}});
}

TEST_CASE(
    "qwen2moe-tiny: ep = dp x tp (dp 2 x tp 1, dp 2 x tp 2, dp 4 x tp 1) in one process gives the reference ids") {
  check_in_process("qwen2moe-tiny", {{2, 1}, {2, 2}, {4, 1}});
}

TEST_CASE("ep = dp x tp as troupe clusters of one process per rank gives the reference ids") {
  for (const char* model : {"mixtral-tiny", "qwen2moe-tiny"}) {
    TROUPE_REQUIRE_SHARED(dir, std::string("models/") + model);
    const auto cases = test::load_reference_cases(dir);
    for (const Wide& l : {Wide{2, 1}, Wide{2, 2}, Wide{4, 1}}) {
      CAPTURE(model);
      CAPTURE(l.dp);
      CAPTURE(l.tp);
      ClusterProcess cluster(spec_of(dir, l));
      auto client = cluster.connect(120s);
      check_requests(*client, cases);
    }
  }
}

TEST_CASE("expert parallelism over replicas: invalid sizes fail before loading, naming the numbers") {
  TROUPE_REQUIRE_SHARED(dir, "models/mixtral-tiny");
  ModelConfig c = ModelConfig::load(dir);
  CHECK_THROWS_WITH_AS(validate_layout(c, 2, 1, {}, 8, 2),
                       "expert_parallel_size (8) must equal tensor_parallel_size (2) or tp x data_parallel_size (2 x 2 "
                       "= 4): the experts are partitioned over the tp group or over every replica's tp group together",
                       Error);
  CHECK_NOTHROW(validate_layout(c, 2, 1, {}, 4, 2));
  CHECK_NOTHROW(validate_layout(c, 2, 1, {}, 2, 2));  // ep = tp: experts over each replica's tp group, as before
  CHECK_THROWS_WITH_AS(validate_layout(c, 1, 1, {}, 16, 16),
                       "num_experts (8) is not divisible by expert_parallel_size (16)", Error);
  const std::string toml = cluster_toml(spec_of(dir, {2, 1}), 47999) + "";
  const std::string with_cp = [&] {
    std::string t = toml;
    t.replace(t.find("ep = 2"), 6, "ep = 2\ncp = 2");
    return t;
  }();
  CHECK_THROWS_WITH_AS(ClusterConfig::parse(with_cp, "wide.toml"),
                       "wide.toml: expert parallelism over replicas (ep 2 > tp 1) does not combine with context "
                       "parallelism (cp 2)",
                       Error);
}
