#include "comm/rank_generator.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/ranges.h>

#include "kernels/error.hpp"

namespace troupe {

namespace {

std::vector<int> prefix_product(const std::vector<int>& a) {
  std::vector<int> r{1};
  for (int v : a) r.push_back(r.back() * v);
  return r;
}

int dot(const std::vector<int>& a, const std::vector<int>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0);
}

// Coordinates of `index` in a row-major-from-the-left layout of `shape`.
std::vector<int> decompose(int index, const std::vector<int>& shape) {
  std::vector<int> stride = prefix_product(shape);
  std::vector<int> idx(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) idx[i] = (index / stride[i]) % shape[i];
  return idx;
}

std::vector<std::string> split_dashes(const std::string& text) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t dash = text.find('-', pos);
    parts.push_back(text.substr(pos, dash == std::string::npos ? std::string::npos : dash - pos));
    if (dash == std::string::npos) return parts;
    pos = dash + 1;
  }
}

}  // namespace

RankGroups generate_masked_orthogonal_rank_groups(int world_size, const std::vector<int>& parallel_size,
                                                  const std::vector<bool>& mask) {
  if (mask.size() != parallel_size.size())
    fail("rank groups: mask has {} entries for {} parallel sizes", mask.size(), parallel_size.size());
  std::vector<int> masked_shape, unmasked_shape, masked_stride, unmasked_stride;
  std::vector<int> global_stride = prefix_product(parallel_size);
  for (size_t i = 0; i < parallel_size.size(); ++i) {
    (mask[i] ? masked_shape : unmasked_shape).push_back(parallel_size[i]);
    (mask[i] ? masked_stride : unmasked_stride).push_back(global_stride[i]);
  }
  if (global_stride.back() != world_size)
    fail("rank groups: parallel sizes multiply to {}, but the world size is {}", global_stride.back(), world_size);
  int group_size = prefix_product(masked_shape).back();
  int num_groups = world_size / group_size;
  RankGroups groups{size_t(num_groups)};
  for (int g = 0; g < num_groups; ++g) {
    int base = dot(decompose(g, unmasked_shape), unmasked_stride);
    for (int r = 0; r < group_size; ++r)
      groups[size_t(g)].push_back(base + dot(decompose(r, masked_shape), masked_stride));
  }
  return groups;
}

RankGenerator::RankGenerator(int tp, int sp, int pp, int cfg, int dp, const std::string& order, int rank_offset)
    : rank_offset_(rank_offset) {
  const std::vector<std::pair<std::string, int>> named = {{"tp", tp}, {"sp", sp}, {"pp", pp}, {"cfg", cfg}, {"dp", dp}};
  for (auto& [name, size] : named)
    if (size < 1) fail("parallel size {} is {} (expected >= 1)", name, size);
  std::string lower = order;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const std::string& token : split_dashes(lower)) {
    auto it = std::find_if(named.begin(), named.end(), [&](auto& n) { return n.first == token; });
    if (it == named.end())
      fail("parallel order '{}': unknown dimension '{}' (expected tp, sp, pp, cfg, dp)", order, token);
    if (std::find(dims_.begin(), dims_.end(), token) != dims_.end())
      fail("parallel order '{}' names {} twice", order, token);
    dims_.push_back(token);
    sizes_.push_back(it->second);
  }
  for (auto& [name, size] : named) {
    if (std::find(dims_.begin(), dims_.end(), name) != dims_.end()) continue;
    if (size != 1) fail("the size of {} is {}, but parallel order '{}' does not place it", name, size, order);
    dims_.push_back(name);
    sizes_.push_back(1);
  }
  order_ = fmt::format("{}", fmt::join(dims_, "-"));
  for (int s : sizes_) world_size_ *= s;
}

RankGroups RankGenerator::get_ranks(const std::string& token) const {
  std::vector<bool> mask(dims_.size(), false);
  for (const std::string& t : split_dashes(token)) {
    auto it = std::find(dims_.begin(), dims_.end(), t);
    if (it == dims_.end()) fail("rank groups '{}': unknown dimension '{}' (order is {})", token, t, order_);
    mask[size_t(it - dims_.begin())] = true;
  }
  RankGroups groups = generate_masked_orthogonal_rank_groups(world_size_, sizes_, mask);
  for (auto& g : groups)
    for (int& r : g) r += rank_offset_;
  return groups;
}

void validate_parallel_degrees(int world_size, int tp, int sp, int pp, int cfg, int dp, int ulysses_degree,
                               int ring_degree) {
  if (ulysses_degree < 1 || ring_degree < 1 || ulysses_degree * ring_degree != sp)
    fail("ulysses_degree ({}) x ring_degree ({}) must equal the sequence parallel degree ({})", ulysses_degree,
         ring_degree, sp);
  if (long(tp) * sp * pp * cfg * dp != world_size)
    fail(
        "world_size ({}) is not equal to tensor_parallel_degree ({}) x sequence_parallel_degree ({}) x "
        "pipeline_parallel_degree ({}) x classifier_free_guidance_degree ({}) x data_parallel_degree ({})",
        world_size, tp, sp, pp, cfg, dp);
}

SequenceParallelGroups split_sequence_parallel(const std::vector<int>& sp_ranks, int ulysses_degree, int ring_degree,
                                               bool ulysses_low) {
  int sp = int(sp_ranks.size());
  if (ulysses_degree < 1 || ring_degree < 1 || ulysses_degree * ring_degree != sp)
    fail("ulysses_degree ({}) x ring_degree ({}) must equal the size of the sequence parallel group ({})",
         ulysses_degree, ring_degree, sp);
  // Contiguous runs of `run` ranks, and the strided groups orthogonal to them.
  auto contiguous = [&](int run) {
    RankGroups g{size_t(sp / run)};
    for (int i = 0; i < sp; ++i) g[size_t(i / run)].push_back(sp_ranks[size_t(i)]);
    return g;
  };
  auto strided = [&](int stride) {
    RankGroups g{size_t(stride)};
    for (int i = 0; i < sp; ++i) g[size_t(i % stride)].push_back(sp_ranks[size_t(i)]);
    return g;
  };
  if (ulysses_low) return {contiguous(ulysses_degree), strided(ulysses_degree)};
  return {strided(ring_degree), contiguous(ring_degree)};
}

}  // namespace troupe
