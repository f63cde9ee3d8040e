#include "sched/scheduler.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace troupe {

Scheduler::Scheduler(const ModelConfig& model, int64_t num_blocks, int64_t block_size, const SchedulerConfig& config)
    : model_(model), config_(config), blocks_(num_blocks, block_size) {
  if (config.max_num_seqs < 1) fail("max_num_seqs ({}) must be at least 1", config.max_num_seqs);
  if (config.max_num_batched_tokens < 1)
    fail("max_num_batched_tokens ({}) must be at least 1", config.max_num_batched_tokens);
  if (config.pipeline_depth < 1) fail("pipeline depth ({}) must be at least 1", config.pipeline_depth);
}

void Scheduler::add(int64_t id, const GenerationRequest& request) {
  validate_request(request, model_);
  if (sequences_.count(id)) fail("request id {} is already in use", id);
  Sequence seq;
  seq.id = id;
  seq.request = request;
  seq.tokens = request.prompt_ids;
  seq.prompt_len = request.prompt_ids.size();
  seq.arrival = next_arrival_++;
  // max_tokens beyond the context means "to the end of the context" (and cannot overflow the sum).
  seq.token_limit = int64_t(seq.prompt_len) + std::min(request.max_tokens, model_.max_position_embeddings);
  seq.token_limit = std::min(seq.token_limit, model_.max_position_embeddings);
  if (blocks_.blocks_for_tokens(seq.token_limit) > blocks_.num_blocks())
    fail("request {} may grow to {} tokens, needing {} kv blocks, but the cache holds only {}", id, seq.token_limit,
         blocks_.blocks_for_tokens(seq.token_limit), blocks_.num_blocks());
  sequences_.emplace(id, std::move(seq));
  ++live_;
}

const Sequence* Scheduler::find(int64_t id) const {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : &it->second;
}

bool Scheduler::abort(int64_t id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end() || it->second.status == SequenceStatus::Finished) return false;
  std::vector<SequenceEvent> ignored;
  finish(it->second, FinishReason::Abort, ignored);
  return true;
}

void Scheduler::finish(Sequence& seq, FinishReason reason, std::vector<SequenceEvent>& events, int32_t token) {
  seq.status = SequenceStatus::Finished;
  blocks_.release(seq.id);
  --live_;
  events.push_back({seq.id, token, true, reason});
  if (!seq.in_flight) sequences_.erase(seq.id);  // else erased when its micro-batch completes
}

bool Scheduler::reserve_or_preempt(Sequence& seq, int64_t tokens) {
  while (!blocks_.reserve(seq.id, tokens)) {
    // The newest sequence holding blocks that is not in flight (possibly `seq` itself) yields.
    Sequence* victim = nullptr;
    for (auto& [id, other] : sequences_)
      if (other.status == SequenceStatus::Running && !other.in_flight && (!victim || other.arrival > victim->arrival))
        victim = &other;
    if (!victim) return false;
    blocks_.release(victim->id);  // preempted: its tokens stay, their KV is recomputed when it runs again
    victim->num_computed = 0;
    victim->status = SequenceStatus::Waiting;
    ++victim->preemptions;
    ++preemptions_;
    if (victim == &seq) return false;
  }
  return true;
}

void Scheduler::recompute_all() {
  for (auto it = sequences_.begin(); it != sequences_.end();) {
    Sequence& seq = it->second;
    if (seq.status == SequenceStatus::Finished) {  // finished while in flight: its micro-batch is forgotten
      it = sequences_.erase(it);
      continue;
    }
    blocks_.release(seq.id);
    seq.num_computed = 0;
    seq.in_flight = false;
    seq.status = SequenceStatus::Waiting;
    ++it;
  }
  in_flight_ = 0;
}

std::vector<std::pair<int64_t, GenerationRequest>> Scheduler::take_unfinished() {
  recompute_all();
  std::vector<const Sequence*> order;
  for (const auto& [id, seq] : sequences_) order.push_back(&seq);
  std::sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) { return a->arrival < b->arrival; });
  std::vector<std::pair<int64_t, GenerationRequest>> out;
  for (const Sequence* seq : order) {
    GenerationRequest rest = seq->request;
    rest.prompt_ids = seq->tokens;
    rest.max_tokens = seq->token_limit - int64_t(seq->tokens.size());
    out.emplace_back(seq->id, std::move(rest));
  }
  sequences_.clear();
  live_ = 0;
  return out;
}

std::optional<MicroBatch> Scheduler::schedule() {
  if (in_flight_ >= config_.pipeline_depth) return std::nullopt;
  std::vector<Sequence*> order;
  for (auto& [id, seq] : sequences_)
    if (seq.status != SequenceStatus::Finished && !seq.in_flight) order.push_back(&seq);
  // A micro-batch takes at most 1/depth of the live sequences (so requests arriving one by one
  // still spread over all micro-batches) and, when fewer wait, their share of the free slots (so
  // every slot gets work and `depth` micro-batches overlap).
  const int64_t free_slots = config_.pipeline_depth - in_flight_;
  const int64_t share = std::max<int64_t>(1, std::min((int64_t(order.size()) + free_slots - 1) / free_slots,
                                                      (live_ + config_.pipeline_depth - 1) / config_.pipeline_depth));
  const int64_t max_seqs = std::min(config_.max_num_seqs, share);
  int64_t token_budget = config_.max_num_batched_tokens;

  // Decodes first, then the rest in arrival order.
  std::stable_sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) {
    bool da = a->status == SequenceStatus::Running && a->remaining_to_compute() == 1;
    bool db = b->status == SequenceStatus::Running && b->remaining_to_compute() == 1;
    if (da != db) return da;
    return a->arrival < b->arrival;
  });

  MicroBatch mb;
  for (Sequence* seq : order) {
    if (int64_t(mb.chunks.size()) >= max_seqs || token_budget == 0) break;
    int64_t length = std::min(seq->remaining_to_compute(), token_budget);
    if (length <= 0) continue;
    if (!reserve_or_preempt(*seq, seq->num_computed + length)) continue;
    seq->status = SequenceStatus::Running;
    bool samples = seq->num_computed + length == int64_t(seq->tokens.size());
    mb.chunks.push_back({seq->id, seq->num_computed, length, samples});
    token_budget -= length;
  }
  // A later reservation may have preempted a sequence already placed in this micro-batch.
  std::erase_if(mb.chunks, [&](const MicroBatch::Chunk& c) {
    return sequences_.at(c.sequence_id).status != SequenceStatus::Running;
  });
  if (mb.chunks.empty()) return std::nullopt;

  mb.id = next_micro_batch_++;
  mb.batch.attention.block_size = blocks_.block_size();
  for (size_t s = 0; s < mb.chunks.size(); ++s) {
    const auto& c = mb.chunks[s];
    Sequence& seq = sequences_.at(c.sequence_id);
    seq.in_flight = true;
    mb.batch.attention.block_tables.push_back(blocks_.block_table(seq.id));
    for (int64_t p = c.start; p < c.start + c.length; ++p) {
      mb.batch.token_ids.push_back(seq.tokens[size_t(p)]);
      mb.batch.attention.positions.push_back(int32_t(p));
      mb.batch.attention.sequence_of_token.push_back(int32_t(s));
    }
    if (c.samples) {
      mb.batch.logit_rows.push_back(mb.batch.num_tokens() - 1);
      mb.sampled_sequences.push_back(seq.id);
      mb.sampling.push_back(seq.request.sampling);
    }
  }
  ++in_flight_;
  return mb;
}

std::vector<SequenceEvent> Scheduler::complete(const MicroBatch& mb, const std::vector<int32_t>& sampled) {
  if (sampled.size() != mb.sampled_sequences.size())
    fail("micro-batch {} sampled {} tokens for {} sequences", mb.id, sampled.size(), mb.sampled_sequences.size());
  for (int32_t token : sampled)
    if (token < 0 || token >= model_.vocab_size)
      fail("micro-batch {} sampled token {}, outside the vocabulary of {}", mb.id, token, model_.vocab_size);
  --in_flight_;
  std::vector<SequenceEvent> events;
  size_t row = 0;
  for (const auto& c : mb.chunks) {
    auto it = sequences_.find(c.sequence_id);
    if (it == sequences_.end() || it->second.status == SequenceStatus::Finished) {  // aborted while in flight
      if (c.samples) ++row;
      if (it != sequences_.end()) sequences_.erase(it);  // else already erased
      continue;
    }
    Sequence& seq = it->second;
    seq.in_flight = false;
    seq.num_computed = c.start + c.length;
    if (!c.samples) continue;
    int32_t token = sampled[row++];
    seq.tokens.push_back(token);
    const auto& eos = model_.eos_token_ids;
    const auto& stops = seq.request.stop_token_ids;
    bool stop = (!seq.request.ignore_eos && std::count(eos.begin(), eos.end(), token)) ||
                std::count(stops.begin(), stops.end(), token);
    if (stop || int64_t(seq.tokens.size()) >= seq.token_limit)
      finish(seq, stop ? FinishReason::Stop : FinishReason::Length, events, token);  // not in flight: erased
    else
      events.push_back({seq.id, token, false, FinishReason::None});
  }
  return events;
}

}  // namespace troupe
