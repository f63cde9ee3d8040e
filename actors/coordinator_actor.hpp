#pragma once
// CoordinatorActor: owns the cluster. It admits nodes (cluster name and secret checked), assigns
// their ranks from the node config, relays the communicators' address exchanges, follows loading
// until every rank is ready, watches heartbeats (a node that misses them, or whose connection
// drops, is declared down and the cluster degraded), and runs the scheduler: each data-parallel
// replica has a continuous-batching Scheduler whose micro-batches are sent to all its ranks, up
// to pp of them in flight so every pipeline stage works while the others do. Sampled tokens come
// back from the last stage and go to the engine as SequenceUpdates. The logic lives in
// ClusterMembership (membership, health) and ReplicaDispatcher (replicas, micro-batches); this
// actor is the glue that feeds them messages and sends what they decide.
#include <caf/all.hpp>

#include <functional>
#include <string>

#include "actors/cluster_config.hpp"
#include "actors/messages.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct CoordinatorConfig {
  ClusterConfig cluster;
  ModelConfig model;
  std::function<void(const std::string&)> log;  // progress and state changes (may be empty)
  bool record_timeline = false;                 // keep every StepResult (pipeline experiments)
};

CoordinatorHandle::behavior_type coordinator_actor(CoordinatorHandle::pointer self, CoordinatorConfig config);

}  // namespace troupe
