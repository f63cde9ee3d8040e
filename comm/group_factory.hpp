#pragma once
// Builds this rank's GroupCoordinator for one kind of group together with its backend, so a
// launcher (or a test) sets up e.g. tp and pp groups in a few lines. Every rank must build its
// groups in the same order: a backend's constructor waits for all members of its group.
#include <string>

#include "comm/group_coordinator.hpp"
#include "comm/ucx_worker.hpp"

namespace troupe {

// All ranks of the group on this host (processes or threads): a shm segment named after the
// job, the group name and the group's first rank. Groups of one get no communicator.
GroupCoordinator make_shm_group(const std::string& job, const std::string& name, const RankGroups& groups, int rank,
                                int local_rank, std::chrono::milliseconds timeout = default_comm_timeout());

// Ranks anywhere: UCX, over the transports and devices `resources` allows. `bootstrap` all-gathers
// among the members of this rank's group only (indexed by rank in group).
GroupCoordinator make_ucx_group(const std::string& name, const RankGroups& groups, int rank, int local_rank,
                                const Bootstrap& bootstrap, std::chrono::milliseconds timeout = default_comm_timeout(),
                                const UcxResources& resources = {});

}  // namespace troupe
