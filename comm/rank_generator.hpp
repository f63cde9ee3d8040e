#pragma once
// RankGenerator: which global ranks form which parallel group. Dimensions are laid out in the
// order given (fastest-varying first), e.g. for "tp-dp-pp":
//     global_rank = tp_rank + dp_rank * tp + pp_rank * tp * dp
// get_ranks("dp") returns every dp group (ranks varying only in dp_rank), "tp-dp" the groups
// spanning both, and so on. Dimensions of size 1 may be left out of `order`.
#include <string>
#include <vector>

namespace troupe {

using RankGroups = std::vector<std::vector<int>>;

// The masked orthogonal groups over `parallel_size` (sizes in layout order): a group holds the
// ranks that differ only in the dimensions where mask is true; groups are numbered by the
// unmasked coordinates, fastest dimension first.
RankGroups generate_masked_orthogonal_rank_groups(int world_size, const std::vector<int>& parallel_size,
                                                  const std::vector<bool>& mask);

class RankGenerator {
 public:
  // Throws if a size is < 1, a dimension of size > 1 is missing from order, or order names an
  // unknown or repeated dimension.
  RankGenerator(int tp, int sp, int pp, int cfg, int dp, const std::string& order, int rank_offset = 0);

  int world_size() const { return world_size_; }
  const std::string& order() const { return order_; }  // completed with the size-1 dimensions
  // token: one or more of tp, sp, pp, cfg, dp joined with '-', e.g. "tp", "tp-dp".
  RankGroups get_ranks(const std::string& token) const;
  // Expert parallelism spans tp x sp x cfg x dp (ep = tp * sp * cfg * dp); one group per pp stage.
  RankGroups ep_ranks() const { return get_ranks("tp-sp-cfg-dp"); }

 private:
  std::vector<std::string> dims_;  // layout order
  std::vector<int> sizes_;
  std::string order_;
  int world_size_ = 1;
  int rank_offset_ = 0;
};

// Checks that tp * sp * pp * cfg * dp == world_size and ulysses * ring == sp, with messages
// naming every degree (the checks a launcher runs before building groups).
void validate_parallel_degrees(int world_size, int tp, int sp, int pp, int cfg, int dp, int ulysses_degree,
                               int ring_degree);

// Ulysses and ring sub-groups of one sequence-parallel group (sp_ranks, size ulysses x ring).
// "Ulysses low" (the default) makes ulysses groups contiguous runs of sp_ranks and ring groups
// strided; otherwise ring groups are contiguous and ulysses groups strided.
struct SequenceParallelGroups {
  RankGroups ulysses;
  RankGroups ring;
};
SequenceParallelGroups split_sequence_parallel(const std::vector<int>& sp_ranks, int ulysses_degree, int ring_degree,
                                               bool ulysses_low = true);

}  // namespace troupe
