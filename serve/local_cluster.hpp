#pragma once
// local_cluster_config: the ClusterConfig of a one-node, in-process cluster for a model folder —
// what `troupe serve --model DIR` and `troupe bench serve` run (InProcessCluster), built directly
// rather than through a node-config file.
//
// Contract. A pure function: the config has one node ("node0" on loopback) with tp x cp x pp ranks,
// the given scheduler limits, and everything else at ClusterConfig's defaults; the layout is
// checked by InProcessCluster when it starts. Owns nothing.
#include <cstdint>
#include <filesystem>

#include "actors/cluster_config.hpp"

namespace troupe::serve {

struct LocalClusterOptions {
  std::filesystem::path model_dir;
  int tp = 1, pp = 1, ep = 1;
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 512;
  int64_t kv_cache_bytes = 64ll << 20;              // per rank
  int cp = 1, ring_degree = 0, ulysses_degree = 0;  // 0: not given (context_parallel_degrees)
  int dp = 1;                                       // replicas (ep = tp x dp: experts over all of them)
  std::string quantize = "none";                    // [model] quantize: q8_0 / q4_0 at load
};

ClusterConfig local_cluster_config(const LocalClusterOptions& options);

}  // namespace troupe::serve
