#include "actors/in_process_cluster.hpp"

#include "actors/messages.hpp"
#include "actors/node_runtime.hpp"
#include "kernels/error.hpp"
#include "model/parallel_layout.hpp"

namespace troupe {

InProcessCluster::InProcessCluster(const ClusterConfig& config_in) {
  // Nodes inside this process cannot start again: a failure degrades the cluster at once.
  ClusterConfig config = config_in;
  config.recovery.enabled = false;
  ModelConfig model = ModelConfig::load(config.model_path);
  validate_layout(model, config.tp, config.pp, config.pp_partition, config.ep, config.dp);
  validate_context_parallel(model, config.tp, config.cp, config.ring_degree, config.ulysses_degree);
  config_ = make_actor_system_config();
  system_ = std::make_unique<caf::actor_system>(*config_);
  auto head = spawn_head(*system_, config, model, {});
  coordinator_ = head.coordinator;
  engine_ = head.engine;
  for (const auto& node : config.nodes) {
    JoinReply reply = start_node(*system_, coordinator_, config, node.name).reply;
    if (!reply.accepted) fail("in-process node '{}' was refused: {}", node.name, reply.reason);
  }
}

InProcessCluster::~InProcessCluster() {
  caf::send_as(engine_, coordinator_, shutdown_atom::value);  // from the head: the coordinator checks
  caf::anon_send_exit(engine_, caf::exit_reason::user_shutdown);
  coordinator_ = nullptr;
  engine_ = nullptr;
  system_->await_all_actors_done();
  system_.reset();
}

}  // namespace troupe
