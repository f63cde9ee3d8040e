#pragma once
// RankActor: one device rank as a CAF actor. It owns the rank build_rank made (its RankWorker, tp
// communicator and pipeline transport) and runs step commands in arrival order; activations go
// peer to peer over UCX, never through actor messages. Spawned detached (its own thread): a step
// blocks in compute and in UCX receives, which must not stall CAF's scheduler.
//
// Life: spawned by its node process -> `start` (after the coordinator accepted the join) ->
// bootstrap the communicators through the coordinator -> load the shard (progress reported) ->
// ready -> steps. The last stage's tp rank 0 samples and reports the tokens.
#include <caf/all.hpp>

#include "actors/cluster_config.hpp"
#include "actors/messages.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct RankActorConfig {
  ClusterConfig cluster;
  int global_rank = 0;
  CoordinatorHandle coordinator;
};

RankHandle::behavior_type rank_actor(RankHandle::pointer self, RankActorConfig config);

}  // namespace troupe
