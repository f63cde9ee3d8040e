// libFuzzer target: bytes as a node config (ClusterConfig::parse of TOML text). Parsing must either
// throw troupe::Error or give a config that the coordinator's start accepts or refuses with
// troupe::Error, without overflow or a runaway allocation: world size and rank counts, each node's
// ranks, membership (a node joins, heartbeats are checked against the timeouts) and a replica
// dispatcher over a small model (KV blocks from the scheduler limits, one request scheduled).
// Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <string>

#include "actors/cluster_config.hpp"
#include "actors/cluster_membership.hpp"
#include "actors/replica_dispatcher.hpp"
#include "kernels/error.hpp"
#include "model/model_config.hpp"

namespace {

const troupe::ModelConfig& small_model() {  // the shape of ../shared/models/gqa260K
  static const troupe::ModelConfig model = troupe::ModelConfig::from_json_text(
      R"({"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
          "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512, "eos_token_id": 2})",
      "fuzz model");
  return model;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  troupe::ClusterConfig c;
  try {
    c = troupe::ClusterConfig::parse(text, "fuzz/cluster.toml");
  } catch (const troupe::Error&) {
    return 0;  // a clear error is the expected outcome for malformed files
  }
  if (c.world_size() < 1 || c.total_ranks() != c.world_size()) __builtin_trap();
  const auto now = troupe::ClusterMembership::Clock::now();
  troupe::ClusterMembership membership(c);
  for (const auto& node : c.nodes) {
    const auto ranks = c.ranks_of(node.name);
    if (int(ranks.size()) != node.ranks) __builtin_trap();
    if (!membership.admit(c.name, c.secret, node.name, {ranks.begin(), ranks.end()}, now).empty()) __builtin_trap();
  }
  (void)membership.overdue(now + c.heartbeat_timeout + c.heartbeat_interval);
  try {
    troupe::ReplicaDispatcher dispatcher(small_model(), c);
    troupe::GenerationRequest request;
    request.prompt_ids = {1, 5, 9};
    request.max_tokens = 4;
    dispatcher.add(1, request);
    (void)dispatcher.schedule(0);
  } catch (const troupe::Error&) {
  }
  return 0;
}
