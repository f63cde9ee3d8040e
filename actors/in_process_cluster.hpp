#pragma once
// InProcessCluster: a whole cluster — coordinator, engine and every node's rank actors — inside
// this process, for embedding troupe in a program (and for tests). The same Client calls work on
// it as on a remote cluster: `Client client(cluster.system(), cluster.coordinator());`.
// Ranks are still real: detached actors with shm tp collectives and UCX pipeline transfers.
#include <caf/all.hpp>

#include <memory>

#include "actors/cluster_config.hpp"
#include "actors/messages.hpp"

namespace troupe {

class InProcessCluster {
 public:
  explicit InProcessCluster(const ClusterConfig& config);
  ~InProcessCluster();
  InProcessCluster(const InProcessCluster&) = delete;
  InProcessCluster& operator=(const InProcessCluster&) = delete;

  caf::actor_system& system() { return *system_; }
  const CoordinatorHandle& coordinator() const { return coordinator_; }

 private:
  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  CoordinatorHandle coordinator_;
  EngineHandle engine_;
};

}  // namespace troupe
