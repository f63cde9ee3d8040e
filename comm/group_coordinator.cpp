#include "comm/group_coordinator.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

#include <fmt/ranges.h>

#include "kernels/error.hpp"

namespace troupe {

namespace {

std::string ranks_str(const std::vector<int>& ranks) { return fmt::format("[{}]", fmt::join(ranks, ", ")); }

// Moves `dim` to the front: [a, b, dim, c] viewed as [outer, dim, inner] -> rank-major blocks.
struct DimSplit {
  int64_t outer = 1, len = 1, inner = 1;
};
DimSplit split_at(const Shape& shape, int64_t dim) {
  auto product = [](auto begin, auto end) { return std::accumulate(begin, end, int64_t(1), std::multiplies<>()); };
  const auto at = shape.begin() + dim;
  return {product(shape.begin(), at), *at, product(at + 1, shape.end())};
}

int64_t normalize_dim(int64_t dim, const Tensor& t, const std::string& group, const char* op) {
  if (dim < 0) dim += t.dim();
  if (dim < 0 || dim >= t.dim()) fail("group '{}' {}: dim {} out of range for {}", group, op, dim, t.describe());
  return dim;
}

}  // namespace

GroupCoordinator::GroupCoordinator(std::string name, const RankGroups& group_ranks, int rank, int local_rank,
                                   std::shared_ptr<DeviceCommunicator> communicator)
    : name_(std::move(name)), rank_(rank), local_rank_(local_rank) {
  for (const auto& g : group_ranks) {
    auto it = std::find(g.begin(), g.end(), rank);
    if (it == g.end()) continue;
    ranks_ = g;
    rank_in_group_ = int(it - g.begin());
    break;
  }
  if (ranks_.empty()) fail("group '{}': rank {} is in none of its {} groups", name_, rank, group_ranks.size());
  if (communicator) set_communicator(std::move(communicator));
}

int GroupCoordinator::group_index_of(int global_rank) const {
  auto it = std::find(ranks_.begin(), ranks_.end(), global_rank);
  if (it == ranks_.end()) fail("group '{}': rank {} is not a member of {}", name_, global_rank, ranks_str(ranks_));
  return int(it - ranks_.begin());
}

DeviceCommunicator& GroupCoordinator::communicator() const {
  if (!communicator_) fail("group '{}' {}: no communicator attached to this rank's group", name_, ranks_str(ranks_));
  return *communicator_;
}

void GroupCoordinator::set_communicator(std::shared_ptr<DeviceCommunicator> communicator) {
  if (communicator && (communicator->size() != world_size() || communicator->rank() != rank_in_group_))
    fail("group '{}': communicator is rank {} of {}, but global rank {} is rank {} of {} in {}", name_,
         communicator->rank(), communicator->size(), rank_, rank_in_group_, world_size(), ranks_str(ranks_));
  communicator_ = std::move(communicator);
}

void GroupCoordinator::all_reduce(Tensor& tensor, ReduceOp op) {
  if (world_size() == 1) return;
  communicator().all_reduce(tensor, op);
}

CommHandle GroupCoordinator::all_reduce_async(Tensor tensor, ReduceOp op) {
  if (world_size() == 1) return {};
  return communicator().all_reduce_async(std::move(tensor), op);
}

Tensor GroupCoordinator::all_gather(const Tensor& input, int64_t dim) {
  if (world_size() == 1) return input;
  dim = normalize_dim(dim, input, name_, "all_gather");
  Tensor in = input.contiguous();
  Shape gathered_shape = in.shape();
  gathered_shape.insert(gathered_shape.begin(), world_size());
  Tensor gathered = Tensor::empty(gathered_shape, in.dtype(), in.device());
  communicator().all_gather(in, gathered);
  Shape out_shape = in.shape();
  out_shape[size_t(dim)] *= world_size();
  if (dim == 0) return gathered.view(out_shape);
  // [world, outer, len, inner] -> [outer, world * len, inner]: copy each rank's block into place.
  DimSplit d = split_at(in.shape(), dim);
  Tensor out = Tensor::empty(out_shape, in.dtype(), in.device());
  Tensor src = gathered.view({world_size(), d.outer, d.len * d.inner});
  Tensor dst = out.view({d.outer, world_size(), d.len * d.inner});
  for (int r = 0; r < world_size(); ++r)
    dst.slice(1, r, r + 1).copy_from(src.row(r).view({d.outer, 1, d.len * d.inner}));
  return out;
}

Tensor GroupCoordinator::reduce_scatter(const Tensor& input, int64_t dim, ReduceOp op) {
  if (world_size() == 1) return input;
  dim = normalize_dim(dim, input, name_, "reduce_scatter");
  if (input.size(dim) % world_size())
    fail("group '{}' reduce_scatter: dim {} of {} does not split into {} equal parts", name_, dim, input.describe(),
         world_size());
  Shape out_shape = input.shape();
  out_shape[size_t(dim)] /= world_size();
  Tensor out = Tensor::empty(out_shape, input.dtype(), input.device());
  Tensor blocks = input.contiguous();
  if (dim != 0) {
    // [outer, world * part, inner] -> rank-major [world, outer, part * inner].
    DimSplit d = split_at(out_shape, dim);
    Tensor src = blocks.view({d.outer, world_size(), d.len * d.inner});
    blocks = Tensor::empty({world_size(), d.outer, d.len * d.inner}, input.dtype(), input.device());
    for (int r = 0; r < world_size(); ++r)
      blocks.row(r).view({d.outer, 1, d.len * d.inner}).copy_from(src.slice(1, r, r + 1));
  }
  communicator().reduce_scatter(blocks, out, op);
  return out;
}

void GroupCoordinator::broadcast(Tensor& tensor, int src) {
  if (world_size() == 1) return;
  communicator().broadcast(tensor, group_index_of(src < 0 ? first_rank() : src));
}

void GroupCoordinator::all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                                  const std::vector<int64_t>& recv_rows) {
  if (world_size() == 1) {
    output.copy_from(input);
    return;
  }
  communicator().all_to_all(input, send_rows, output, recv_rows);
}

void GroupCoordinator::send(const Tensor& tensor, int dst) {
  communicator().send(tensor, group_index_of(dst < 0 ? next_rank() : dst));
}

void GroupCoordinator::recv(Tensor& tensor, int src) {
  communicator().recv(tensor, group_index_of(src < 0 ? prev_rank() : src));
}

void GroupCoordinator::barrier() {
  if (world_size() == 1) return;
  communicator().barrier();
}

}  // namespace troupe
