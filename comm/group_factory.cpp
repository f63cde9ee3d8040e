#include "comm/group_factory.hpp"

#include "comm/shm_communicator.hpp"
#include "comm/ucx_communicator.hpp"

namespace troupe {

GroupCoordinator make_shm_group(const std::string& job, const std::string& name, const RankGroups& groups, int rank,
                                int local_rank, std::chrono::milliseconds timeout) {
  GroupCoordinator g(name, groups, rank, local_rank);
  if (g.world_size() > 1) {
    std::string segment = "troupe-" + job + "-" + name + "-" + std::to_string(g.first_rank());
    g.set_communicator(std::make_shared<ShmCommunicator>(
        ShmOptions{CommGroupInfo(name, g.rank_in_group(), g.world_size(), timeout), segment}));
  }
  return g;
}

GroupCoordinator make_ucx_group(const std::string& name, const RankGroups& groups, int rank, int local_rank,
                                const Bootstrap& bootstrap, std::chrono::milliseconds timeout,
                                const UcxResources& resources) {
  GroupCoordinator g(name, groups, rank, local_rank);
  if (g.world_size() > 1) {
    UcxOptions options{CommGroupInfo(name, g.rank_in_group(), g.world_size(), timeout)};
    options.resources = resources;
    g.set_communicator(std::make_shared<UcxCommunicator>(options, bootstrap));
  }
  return g;
}

}  // namespace troupe
