#include "actors/replica_dispatcher.hpp"

#include <algorithm>

namespace troupe {

ReplicaDispatcher::ReplicaDispatcher(const ModelConfig& model, const ClusterConfig& c)
    : model_(model),
      scheduler_config_{c.max_num_seqs, c.max_num_batched_tokens, c.micro_batches > 0 ? c.micro_batches : c.pp},
      kv_blocks_(kv_blocks_for(KvCacheOptions{c.block_size, c.num_kv_blocks, c.kv_cache_bytes}, model, c.tp, c.pp,
                               c.pp_partition)),
      block_size_(c.block_size),
      ranks_per_replica_(c.tp * c.pp),
      sampler_rank_((c.pp - 1) * c.tp),
      replicas_(size_t(c.dp)) {
  for (auto& r : replicas_) r.scheduler = make_scheduler();
}

std::unique_ptr<Scheduler> ReplicaDispatcher::make_scheduler() const {
  return std::make_unique<Scheduler>(model_, kv_blocks_, block_size_, scheduler_config_);
}

int ReplicaDispatcher::add(int64_t id, const GenerationRequest& request) {
  size_t best = 0;
  for (size_t r = 1; r < replicas_.size(); ++r)
    if (replicas_[r].live.size() < replicas_[best].live.size()) best = r;
  replicas_[best].scheduler->add(id, request);
  replicas_[best].live.push_back(id);
  return int(best);
}

int ReplicaDispatcher::replica_of_request(int64_t id) const {
  for (size_t r = 0; r < replicas_.size(); ++r)
    if (std::count(replicas_[r].live.begin(), replicas_[r].live.end(), id)) return int(r);
  return -1;
}

void ReplicaDispatcher::finished(Replica& replica, int64_t id) {
  replica.live.erase(std::remove(replica.live.begin(), replica.live.end(), id), replica.live.end());
  replica.released.push_back(id);
  ++finished_;
}

std::vector<SequenceUpdate> ReplicaDispatcher::cancel(int64_t id) {
  const int r = replica_of_request(id);
  if (r < 0 || !replicas_[size_t(r)].scheduler->abort(id)) return {};
  finished(replicas_[size_t(r)], id);
  return {SequenceUpdate{id, -1, true, FinishReason::Abort, ""}};
}

std::vector<StepRequest> ReplicaDispatcher::schedule(int replica_index) {
  Replica& replica = replicas_.at(size_t(replica_index));
  std::vector<StepRequest> steps;
  while (auto mb = replica.scheduler->schedule()) {
    steps.push_back(StepRequest{mb->id, mb->batch, mb->sampled_sequences, mb->sampling, std::move(replica.released)});
    replica.released.clear();
    replica.in_flight.emplace(mb->id, InFlight{std::move(*mb), std::vector<bool>(size_t(ranks_per_replica_)), 0, {}});
  }
  return steps;
}

std::vector<SequenceUpdate> ReplicaDispatcher::on_step_done(const StepResult& result) {
  const int index = replica_of_rank(result.rank);
  if (result.rank < 0 || index >= num_replicas()) return {};
  Replica& replica = replicas_[size_t(index)];
  auto it = replica.in_flight.find(result.micro_batch);
  if (it == replica.in_flight.end()) return {};  // from before a reset
  InFlight& step = it->second;
  const int offset = result.rank - index * ranks_per_replica_;
  if (step.answered[size_t(offset)]) return {};
  step.answered[size_t(offset)] = true;
  if (offset == sampler_rank_) step.sampled = result.sampled;
  if (++step.answers < ranks_per_replica_) return {};
  std::vector<SequenceUpdate> updates;
  for (const auto& e : replica.scheduler->complete(step.batch, step.sampled)) {
    updates.push_back(SequenceUpdate{e.sequence_id, e.token, e.finished, e.finish_reason, ""});
    if (e.finished) finished(replica, e.sequence_id);
  }
  replica.in_flight.erase(it);
  return updates;
}

std::vector<SequenceUpdate> ReplicaDispatcher::fail_all(const std::string& why) {
  std::vector<SequenceUpdate> updates;
  for (auto& replica : replicas_) {
    for (int64_t id : replica.live) updates.push_back(SequenceUpdate{id, -1, true, FinishReason::Error, why});
    finished_ += int64_t(replica.live.size());
    replica = Replica{make_scheduler(), {}, {}, {}};
  }
  return updates;
}

int64_t ReplicaDispatcher::running() const {
  int64_t n = 0;
  for (const auto& r : replicas_) n += int64_t(r.live.size());
  return n;
}

int64_t ReplicaDispatcher::waiting() const {
  int64_t n = 0;
  for (const auto& r : replicas_)
    for (int64_t id : r.live)
      if (const Sequence* seq = r.scheduler->find(id); seq && seq->status == SequenceStatus::Waiting) ++n;
  return n;
}

int64_t ReplicaDispatcher::kv_blocks_used() const {
  int64_t n = 0;
  for (const auto& r : replicas_) n += r.scheduler->blocks().num_blocks() - r.scheduler->blocks().num_free_blocks();
  return n;
}

int64_t ReplicaDispatcher::kv_blocks_total() const {
  int64_t n = 0;
  for (const auto& r : replicas_) n += r.scheduler->blocks().num_blocks();
  return n;
}

int64_t ReplicaDispatcher::preemptions() const {
  int64_t n = 0;
  for (const auto& r : replicas_) n += r.scheduler->num_preemptions();
  return n;
}

}  // namespace troupe
