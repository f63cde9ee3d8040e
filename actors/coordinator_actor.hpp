#pragma once
// CoordinatorActor: owns the cluster. It admits nodes (cluster name and secret checked), assigns
// their ranks from the node config, relays the communicators' address exchanges, follows loading
// until every rank is ready, watches heartbeats (a node that misses them, or whose connection
// drops, is declared down and the cluster degraded), and runs the scheduler: each data-parallel
// replica has a continuous-batching Scheduler whose micro-batches are sent to all its ranks, up
// to pp of them in flight so every pipeline stage works while the others do. Sampled tokens come
// back from the last stage and go to the engine as SequenceUpdates.
#include <caf/all.hpp>

#include <functional>
#include <string>

#include "actors/cluster_config.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct CoordinatorConfig {
  ClusterConfig cluster;
  ModelConfig model;
  std::function<void(const std::string&)> log;  // progress and state changes (may be empty)
  bool record_timeline = false;                 // keep every StepResult (pipeline experiments)
};

caf::behavior coordinator_actor(caf::event_based_actor* self, CoordinatorConfig config);

}  // namespace troupe
