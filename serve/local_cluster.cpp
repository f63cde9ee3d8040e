#include "serve/local_cluster.hpp"

#include "kernels/error.hpp"
#include "kernels/linear.hpp"
#include "model/parallel_layout.hpp"

namespace troupe::serve {

ClusterConfig local_cluster_config(const LocalClusterOptions& o) {
  if (o.tp < 1 || o.pp < 1 || o.ep < 1 || o.cp < 1 || o.dp < 1) fail("--tp, --pp, --ep, --cp and --dp must be >= 1");
  if (o.max_num_seqs < 1 || o.max_num_batched_tokens < 1 || o.kv_cache_bytes < 1)
    fail("--max-num-seqs, --max-num-batched-tokens and --kv-cache-bytes must be >= 1");
  ClusterConfig c;
  c.source = "troupe-serve (in-process)";
  c.name = "serve";
  c.secret = "in-process";
  c.model_path = std::filesystem::absolute(o.model_dir);
  parse_weight_format(o.quantize);  // refused here, by name, rather than in every rank
  c.quantize = o.quantize;
  c.tp = o.tp;
  c.pp = o.pp;
  c.ep = o.ep;
  c.dp = o.dp;
  c.cp = o.cp;
  std::tie(c.ring_degree, c.ulysses_degree) = context_parallel_degrees(o.cp, o.ring_degree, o.ulysses_degree);
  c.max_num_seqs = o.max_num_seqs;
  c.max_num_batched_tokens = o.max_num_batched_tokens;
  c.kv_cache_bytes = o.kv_cache_bytes;
  NodeSpec node;
  node.name = "node0";
  node.ranks = c.world_size();
  c.nodes.push_back(node);
  return c;
}

}  // namespace troupe::serve
