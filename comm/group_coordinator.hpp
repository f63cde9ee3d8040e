#pragma once
// GroupCoordinator: one object per group per rank. It knows where this process sits and routes
// collectives to the group's backend (shm, ucx or nccl), translating global ranks where needed.
//
// Three different numbers, for a group of size 4 spread over two nodes:
//   Process | Node | Rank | Local Rank | Rank in Group
//     0     |  0   |  0   |     0      |      0
//     1     |  0   |  1   |     1      |      1
//     2     |  1   |  2   |     0      |      2
//     3     |  1   |  3   |     1      |      3
// rank: global rank; local_rank: index on its host (selects the device); rank_in_group: position
// inside this group's rank list.
#include <memory>
#include <string>
#include <vector>

#include "comm/device_communicator.hpp"
#include "comm/rank_generator.hpp"

namespace troupe {

class GroupCoordinator {
 public:
  // group_ranks: every group of this kind (as RankGenerator returns them); the one containing
  // `rank` becomes this coordinator's group. communicator may be null (topology only); otherwise
  // its rank and size must match rank_in_group and world_size.
  GroupCoordinator(std::string name, const RankGroups& group_ranks, int rank, int local_rank,
                   std::shared_ptr<DeviceCommunicator> communicator = nullptr);

  const std::string& name() const { return name_; }
  int rank() const { return rank_; }
  const std::vector<int>& ranks() const { return ranks_; }
  int world_size() const { return int(ranks_.size()); }
  int local_rank() const { return local_rank_; }
  int rank_in_group() const { return rank_in_group_; }
  int first_rank() const { return ranks_.front(); }
  int last_rank() const { return ranks_.back(); }
  bool is_first_rank() const { return rank_ == first_rank(); }
  bool is_last_rank() const { return rank_ == last_rank(); }
  // Global ranks of the neighbours in the group's ring order (pipeline stages use these).
  int next_rank() const { return ranks_[size_t((rank_in_group_ + 1) % world_size())]; }
  int prev_rank() const { return ranks_[size_t((rank_in_group_ + world_size() - 1) % world_size())]; }
  // Position of a global rank in this group; throws naming the group when it is not a member.
  int group_index_of(int global_rank) const;

  DeviceCommunicator& communicator() const;
  const std::shared_ptr<DeviceCommunicator>& shared_communicator() const { return communicator_; }  // may be null
  void set_communicator(std::shared_ptr<DeviceCommunicator> communicator);

  // Collectives. A group of one is a no-op / copy and needs no communicator.
  void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  CommHandle all_reduce_async(Tensor tensor, ReduceOp op = ReduceOp::Sum);
  // Concatenates every rank's tensor along `dim` (the TP column-parallel gather).
  Tensor all_gather(const Tensor& input, int64_t dim = 0);
  // Splits `input` along `dim` into world_size parts and returns this rank's reduced part.
  Tensor reduce_scatter(const Tensor& input, int64_t dim = 0, ReduceOp op = ReduceOp::Sum);
  // src is a global rank (default: the first rank of the group).
  void broadcast(Tensor& tensor, int src = -1);
  void all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                  const std::vector<int64_t>& recv_rows);
  // dst/src are global ranks; default the next / previous rank in the group.
  void send(const Tensor& tensor, int dst = -1);
  void recv(Tensor& tensor, int src = -1);
  void barrier();

 private:
  std::string name_;
  std::vector<int> ranks_;
  int rank_ = 0;
  int local_rank_ = 0;
  int rank_in_group_ = 0;
  std::shared_ptr<DeviceCommunicator> communicator_;
};

}  // namespace troupe
