#include "actors/message_checks.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/error.hpp"

namespace troupe {

std::string join_problem(const JoinRequest& join, size_t world_size) {
  if (std::max({join.cluster.size(), join.node.size(), join.host.size()}) > limits::kMaxName)
    return fmt::format("a name longer than {} bytes", limits::kMaxName);
  if (join.secret.size() > limits::kMaxBlobBytes)
    return fmt::format("a secret longer than {} bytes", limits::kMaxBlobBytes);
  if (join.ranks.size() > world_size)
    return fmt::format("{} ranks offered (the cluster has {})", join.ranks.size(), world_size);
  if (join.rank_actors.size() != join.ranks.size())
    return fmt::format("{} rank actors for {} ranks", join.rank_actors.size(), join.ranks.size());
  return "";
}

std::string bootstrap_problem(const BootstrapBlob& blob, size_t world_size) {
  if (blob.size < 1 || size_t(blob.size) > world_size)
    return fmt::format("exchange size {} (the cluster has {} ranks)", blob.size, world_size);
  if (blob.rank < 0 || blob.rank >= blob.size) return fmt::format("rank {} of {}", blob.rank, blob.size);
  if (blob.exchange.size() > limits::kMaxName) return "exchange name too long";
  if (blob.blob.size() > limits::kMaxBlobBytes) return fmt::format("blob of {} bytes", blob.blob.size());
  return "";
}

std::string rank_status_problem(const RankStatus& status, size_t world_size, int64_t num_layers) {
  if (status.rank < 0 || size_t(status.rank) >= world_size) return fmt::format("no rank {}", status.rank);
  if (status.done < 0 || status.done > status.total || status.total > num_layers)
    return fmt::format("progress {}/{} (the model has {} layers)", status.done, status.total, num_layers);
  return "";
}

std::string step_result_problem(const StepResult& r, size_t world_size, size_t max_sampled) {
  if (r.rank < 0 || size_t(r.rank) >= world_size) return fmt::format("no rank {}", r.rank);
  if (r.sampled.size() > max_sampled)
    return fmt::format("{} sampled tokens (a micro-batch samples at most {})", r.sampled.size(), max_sampled);
  for (double t :
       {r.compute_seconds, r.collective_seconds, r.transfer_seconds, r.recv_seconds, r.start_time, r.end_time})
    if (!(std::fabs(t) <= limits::kMaxSeconds)) return fmt::format("a time of {} s", t);  // NaN and inf too
  return "";
}

void validate_submit(const SubmitRequest& r, const ModelConfig& model) {
  using namespace limits;
  if (r.prompt.size() > kMaxPromptBytes)
    fail("prompt of {} bytes is longer than the limit of {} bytes", r.prompt.size(), kMaxPromptBytes);
  // Ids are checked one by one (vocabulary) by validate_request; their number first, here.
  if (int64_t(r.prompt_ids.size()) >= model.max_position_embeddings)
    fail("prompt of {} tokens does not fit the context of {} tokens (max_position_embeddings) with room to generate",
         r.prompt_ids.size(), model.max_position_embeddings);
  if (r.max_tokens < 1) fail("max_tokens ({}) must be at least 1", r.max_tokens);  // as validate_request says
  if (r.max_tokens > kMaxTokens) fail("max_tokens ({}) is more than the limit of {}", r.max_tokens, kMaxTokens);
  if (r.stop.size() > kMaxStopStrings) fail("stop holds {} strings: at most {}", r.stop.size(), kMaxStopStrings);
  for (const auto& s : r.stop)
    if (s.size() > kMaxStopBytes)
      fail("stop string of {} bytes is longer than the limit of {} bytes", s.size(), kMaxStopBytes);
  if (r.stop_token_ids.size() > kMaxStopTokenIds)
    fail("stop_token_ids holds {} ids: at most {}", r.stop_token_ids.size(), kMaxStopTokenIds);
  for (int32_t id : r.stop_token_ids)
    if (id < 0 || id >= model.vocab_size)
      fail("stop token id {} is out of range for vocab_size {}", id, model.vocab_size);
  if (!(r.temperature <= kMaxTemperature))  // NaN too; the lower bound is SamplingParams::validate's
    fail("temperature {} must be at most {}", r.temperature, kMaxTemperature);
  SamplingParams{r.temperature, r.top_p, r.top_k, r.seed}.validate();
}

void validate_step_request(const StepRequest& step, int64_t block_size) {
  const ForwardBatch& batch = step.batch;
  validate_attention_metadata(batch.attention, batch.num_tokens(), -1, block_size);
  for (int64_t row : batch.logit_rows)
    if (row < 0 || row >= batch.num_tokens())
      fail("micro-batch {}: logit row {} outside the batch of {} tokens", step.micro_batch, row, batch.num_tokens());
  if (step.sampling.size() != step.sample_sequences.size() || step.sample_sequences.size() > batch.logit_rows.size())
    fail("micro-batch {}: {} sampled sequences with {} sampling parameters and {} logit rows", step.micro_batch,
         step.sample_sequences.size(), step.sampling.size(), batch.logit_rows.size());
  for (const auto& params : step.sampling) params.validate();
}

}  // namespace troupe
