#include "actors/replica_dispatcher.hpp"

#include <algorithm>

namespace troupe {

ReplicaDispatcher::ReplicaDispatcher(const ModelConfig& model, const ClusterConfig& c)
    : model_(model),
      scheduler_config_{c.max_num_seqs, c.max_num_batched_tokens, c.micro_batches > 0 ? c.micro_batches : c.pp},
      kv_blocks_(kv_blocks_for(KvCacheOptions{c.block_size, c.num_kv_blocks, c.kv_cache_bytes}, model, c.tp, c.pp,
                               c.pp_partition)),
      block_size_(c.block_size),
      ranks_per_replica_(c.replica_size()),
      sampler_rank_((c.pp - 1) * c.tp * c.cp),
      lockstep_(c.ep > c.tp && c.dp > 1),
      replicas_(size_t(c.dp)) {
  for (auto& r : replicas_) r.scheduler = make_scheduler();
}

std::unique_ptr<Scheduler> ReplicaDispatcher::make_scheduler() const {
  return std::make_unique<Scheduler>(model_, kv_blocks_, block_size_, scheduler_config_);
}

int ReplicaDispatcher::add(int64_t id, const GenerationRequest& request, const std::vector<bool>& serving) {
  const bool any_serving = std::count(serving.begin(), serving.end(), true) > 0;
  auto eligible = [&](size_t r) { return !any_serving || serving.at(r); };
  size_t best = replicas_.size();
  for (size_t r = 0; r < replicas_.size(); ++r)
    if (eligible(r) && (best == replicas_.size() || replicas_[r].live.size() < replicas_[best].live.size())) best = r;
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

std::vector<StepRequest> ReplicaDispatcher::schedule(int replica_index, Clock::time_point now) {
  Replica& replica = replicas_.at(size_t(replica_index));
  std::vector<StepRequest> steps;
  while (auto mb = replica.scheduler->schedule()) {
    steps.push_back(StepRequest{mb->id, mb->batch, mb->sampled_sequences, mb->sampling, std::move(replica.released)});
    replica.released.clear();
    replica.in_flight.emplace(mb->id,
                              InFlight{std::move(*mb), std::vector<bool>(size_t(ranks_per_replica_)), 0, {}, now});
  }
  return steps;
}

std::vector<std::vector<StepRequest>> ReplicaDispatcher::schedule_all(Clock::time_point now) {
  std::vector<std::vector<StepRequest>> steps;
  size_t most = 0;
  for (int r = 0; r < num_replicas(); ++r) {
    steps.push_back(schedule(r, now));
    most = std::max(most, steps.back().size());
  }
  for (int r = 0; r < num_replicas(); ++r) {
    Replica& replica = replicas_[size_t(r)];
    while (steps[size_t(r)].size() < most) {
      MicroBatch empty;
      empty.id = next_dummy_id_--;
      empty.batch.attention.block_size = block_size_;
      steps[size_t(r)].push_back(StepRequest{empty.id, empty.batch, {}, {}, std::move(replica.released)});
      replica.released.clear();
      InFlight step{std::move(empty), std::vector<bool>(size_t(ranks_per_replica_)), 0, {}, now};
      step.dummy = true;
      replica.in_flight.emplace(step.batch.id, std::move(step));
      ++dummy_steps_;
    }
  }
  if (most == 0) steps.clear();
  return steps;
}

std::vector<SequenceUpdate> ReplicaDispatcher::on_step_done(const StepResult& result, Clock::time_point now) {
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
  ++micro_batches_completed_;
  if (step.dummy) {
    replica.in_flight.erase(it);
    return {};
  }
  const double seconds = std::chrono::duration<double>(now - step.sent).count();
  replica.seconds_per_token.push_back(seconds / double(std::max<int64_t>(1, step.batch.batch.num_tokens())));
  if (replica.seconds_per_token.size() > 64) replica.seconds_per_token.pop_front();
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

std::optional<ReplicaDispatcher::Overdue> ReplicaDispatcher::overdue(Clock::time_point now,
                                                                     std::chrono::milliseconds floor, double factor,
                                                                     std::chrono::milliseconds first_steps) const {
  std::optional<Overdue> oldest;
  for (size_t r = 0; r < replicas_.size(); ++r) {
    const Replica& replica = replicas_[r];
    double median = 0;
    if (!replica.seconds_per_token.empty()) {
      std::vector<double> sorted(replica.seconds_per_token.begin(), replica.seconds_per_token.end());
      std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(sorted.size() / 2), sorted.end());
      median = sorted[sorted.size() / 2];
    }
    for (const auto& [id, step] : replica.in_flight) {
      const double waited = std::chrono::duration<double>(now - step.sent).count();
      const double deadline = replica.seconds_per_token.empty()
                                  ? std::chrono::duration<double>(first_steps).count()
                                  : std::chrono::duration<double>(floor).count() +
                                        factor * median * double(std::max<int64_t>(1, step.batch.batch.num_tokens()));
      if (waited <= deadline || (oldest && oldest->waited_seconds >= waited)) continue;
      Overdue o{int(r), id, waited, deadline, {}};
      for (size_t k = 0; k < step.answered.size(); ++k)
        if (!step.answered[k]) o.silent_ranks.push_back(int(r) * ranks_per_replica_ + int(k));
      oldest = std::move(o);
    }
  }
  return oldest;
}

void ReplicaDispatcher::recompute(int replica_index) {
  Replica& replica = replicas_.at(size_t(replica_index));
  replica.scheduler->recompute_all();
  replica.in_flight.clear();
  replica.released.clear();  // the restarted ranks never knew them
}

std::vector<SequenceUpdate> ReplicaDispatcher::hand_over(int replica_index, const std::vector<bool>& serving,
                                                         const std::string& why) {
  recompute(replica_index);
  Replica& from = replicas_.at(size_t(replica_index));
  auto moving = from.scheduler->take_unfinished();
  from.live.clear();
  std::vector<bool> others = serving;
  others.resize(replicas_.size());
  others[size_t(replica_index)] = false;
  std::vector<SequenceUpdate> updates;
  if (std::count(others.begin(), others.end(), true) == 0) {
    for (const auto& [id, rest] : moving) updates.push_back(SequenceUpdate{id, -1, true, FinishReason::Error, why});
    finished_ += int64_t(moving.size());
    return updates;
  }
  for (const auto& [id, rest] : moving) add(id, rest, others);
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
