#pragma once
// CoordinatorActor: owns the cluster. It admits nodes (cluster name and secret checked), assigns
// their ranks from the node config, relays the communicators' address exchanges, follows loading
// until every rank is ready, and runs the scheduler: each data-parallel
// replica has a continuous-batching Scheduler whose micro-batches are sent to all its ranks, up
// to pp of them in flight so every pipeline stage works while the others do. Sampled tokens come
// back from the last stage and go to the engine as SequenceUpdates.
//
// Failures ([recovery], docs/fault-tolerance.md): a node whose process or connection is gone, that
// misses its heartbeats, a rank that reports an error, or a micro-batch past its step deadline
// starts a recovery: the epoch advances (a new run id: new shm names, a new pipeline nonce), the
// nodes of every data-parallel replica the failure touches are told to restart (their processes
// start again and join afresh; on_node_lost lets the head kill a hung one it started), and those
// replicas' live requests are recomputed from their prompt and the tokens already streamed — on a
// replica still serving, or on their own once it has joined and loaded again. Clients see a
// pause, not an error. A replica whose nodes do not rejoin within rejoin_timeout is given up (its
// requests go on elsewhere; it serves again when its nodes join); with none left serving, or after
// more than max_recoveries recoveries within restart_period, the cluster degrades: every live
// request ends with an error naming why. The logic lives in
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
  // A node was declared failed (hung, or gone): the head kills the process if it started it (it is
  // restarted then). Called on the coordinator's thread; may be empty.
  std::function<void(const std::string& node)> on_node_lost;
};

CoordinatorHandle::behavior_type coordinator_actor(CoordinatorHandle::pointer self, CoordinatorConfig config);

}  // namespace troupe
