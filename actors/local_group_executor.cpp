#include "actors/local_group_executor.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "actors/secrets.hpp"
#include "comm/tcp_rendezvous.hpp"
#include "kernels/error.hpp"

namespace troupe {

LocalGroupExecutor::LocalGroupExecutor(const std::filesystem::path& model_dir, const LocalGroupOptions& options,
                                       const std::function<void(int64_t, int64_t)>& on_progress)
    : config_(ModelConfig::load(model_dir)), options_(options), on_progress_(on_progress) {
  // Before any weight is touched:
  if (options.dp < 1) fail("data_parallel_size ({}) must be at least 1", options.dp);
  validate_layout(config_, options.tp, options.pp, options.pp_partition, options.ep, options.dp);
  validate_context_parallel(config_, options.tp, options.cp, options.ring_degree, options.ulysses_degree);
  weights_ = WeightStore::open(model_dir, options.quantize);
  num_blocks_ = kv_blocks_for(options.kv, config_, options.tp, options.pp, options.pp_partition);

  std::vector<int> ports;  // each replica's pipeline transport meets at its own rendezvous
  for (int d = 0; d < options.dp; ++d) ports.push_back(options.pp > 1 ? TcpRendezvous::free_port() : 0);
  const uint64_t nonce = random_nonce();  // an unguessable job name, and the pipeline messages' nonce
  const std::string job = fmt::format("{:016x}", nonce);
  for (int r = 0; r < world_size(); ++r)
    threads_.emplace_back([this, r, ports, job, nonce] { rank_main(r, ports, job, nonce); });
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return ready_ == world_size(); });
  lock.unlock();
  if (startup_error_) {
    stop();  // the destructor does not run after a constructor throws
    std::rethrow_exception(startup_error_);
  }
  // Every rank has packed what it needs (the tensors it still views keep their own storage): a GGUF
  // file's dequantized copies go now, not at the end of the run.
  weights_ = WeightStore();
}

LocalGroupExecutor::~LocalGroupExecutor() { stop(); }

void LocalGroupExecutor::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void LocalGroupExecutor::rank_main(int rank, const std::vector<int>& ports, const std::string& job, uint64_t nonce) {
  const int replica = rank / replica_size(), rendezvous_port = ports[size_t(replica)];
  std::unique_ptr<BuiltRank> built;
  try {
    RankSpec spec{.rank = rank, .model = config_, .weights = &weights_, .kv = options_.kv};
    spec.shape = {options_.tp,
                  options_.pp,
                  options_.dp,
                  options_.ep,
                  "tp-pp-dp",
                  options_.pp_partition,
                  options_.replicated_experts};
    spec.shape.cp = options_.cp;
    spec.shape.ring_degree = options_.ring_degree;
    spec.shape.ulysses_degree = options_.ulysses_degree;
    spec.threads = options_.threads_per_rank;
    spec.job = job;
    spec.run_nonce = nonce;
    spec.ucx = {"sm,self", ""};  // every rank is a thread of this process: no socket
    spec.timeout = options_.timeout;
    // Every tp group is on this host (shared memory): the one exchange is the pipeline transport's.
    spec.bootstrap = [&](const std::string&, int index, int size) -> Bootstrap {
      auto rendezvous = std::make_shared<TcpRendezvous>("127.0.0.1", rendezvous_port, index, size, options_.timeout);
      return [rendezvous](const std::string& mine) { return rendezvous->all_gather(mine); };
    };
    if (rank == 0) spec.on_progress = on_progress_;
    built = std::make_unique<BuiltRank>(build_rank(spec));
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!startup_error_) startup_error_ = std::current_exception();
  }
  std::optional<ScopedThreadPool> scope;
  if (built) scope.emplace(*built->pool);
  uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  if (ranks_.empty()) ranks_.resize(size_t(world_size()));
  ranks_[size_t(rank)] = std::move(built);
  ++ready_;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_ != seen; });
    if (stop_) break;
    seen = job_;
    const ForwardBatch* batch = batch_ ? batch_ : &batches_[size_t(replica)];
    RankWorker* w = ranks_[size_t(rank)]->worker.get();
    lock.unlock();
    Tensor logits;
    std::exception_ptr error;
    try {
      logits = w->step(*batch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !step_error_) step_error_ = error;
    if (w->layout().reports_logits()) logits_[size_t(replica)] = logits;
    ++done_;
    cv_.notify_all();
  }
  scope.reset();
  std::unique_ptr<BuiltRank> mine = std::move(ranks_[size_t(rank)]);
  lock.unlock();  // the communicators' teardown may wait for the other ranks
}

Tensor LocalGroupExecutor::execute(const ForwardBatch& batch) {
  const int dp = options_.dp;
  if (dp == 1) return step({}, &batch)[0];  // no split: the ranks read the caller's batch
  // Each sequence to a replica: a sequence that starts here (position 0) to the one with the fewest
  // tokens so far in this step, remembered by its first KV block; a continuing one to where its KV is.
  std::vector<ForwardBatch> parts(static_cast<size_t>(dp));
  std::vector<int32_t> first_position(batch.attention.block_tables.size(), INT32_MAX);
  std::vector<int64_t> tokens_of(batch.attention.block_tables.size(), 0);
  for (size_t t = 0; t < batch.token_ids.size(); ++t) {
    const int32_t s = batch.attention.sequence_of_token.at(t);
    if (s < 0 || size_t(s) >= first_position.size())
      fail("forward batch: token {} belongs to sequence {} of {}", t, s, first_position.size());
    first_position[size_t(s)] = std::min(first_position[size_t(s)], batch.attention.positions.at(t));
    ++tokens_of[size_t(s)];
  }
  std::vector<int64_t> load(static_cast<size_t>(dp), 0);
  std::vector<int> replica_of_sequence;
  std::vector<int32_t> index_in_part;
  for (size_t s = 0; s < batch.attention.block_tables.size(); ++s) {
    const auto& table = batch.attention.block_tables[s];
    int r = 0;
    if (dp > 1 && !table.empty()) {
      auto known = replica_of_first_block_.find(table.front());
      if (first_position[s] == 0 || known == replica_of_first_block_.end()) {
        r = int(std::min_element(load.begin(), load.end()) - load.begin());
        replica_of_first_block_[table.front()] = r;
      } else {
        r = known->second;
      }
    }
    load[size_t(r)] += tokens_of[s];
    replica_of_sequence.push_back(r);
    index_in_part.push_back(int32_t(parts[size_t(r)].attention.block_tables.size()));
    parts[size_t(r)].attention.block_tables.push_back(table);
  }
  std::vector<int64_t> row_in_part(batch.token_ids.size(), -1);
  for (size_t t = 0; t < batch.token_ids.size(); ++t) {
    const int32_t s = batch.attention.sequence_of_token[t];
    ForwardBatch& p = parts[size_t(replica_of_sequence[size_t(s)])];
    row_in_part[t] = p.num_tokens();
    p.token_ids.push_back(batch.token_ids[t]);
    p.attention.positions.push_back(batch.attention.positions.at(t));
    p.attention.sequence_of_token.push_back(index_in_part[size_t(s)]);
  }
  std::vector<std::pair<int, int64_t>> logit_source;  // per logit row: replica and row of its logits
  for (int64_t row : batch.logit_rows) {
    if (row < 0 || row >= batch.num_tokens())
      fail("logit row {} outside the batch of {} tokens", row, batch.num_tokens());
    const int r = replica_of_sequence[size_t(batch.attention.sequence_of_token[size_t(row)])];
    logit_source.emplace_back(r, int64_t(parts[size_t(r)].logit_rows.size()));
    parts[size_t(r)].logit_rows.push_back(row_in_part[size_t(row)]);
  }
  for (auto& p : parts) p.attention.block_size = batch.attention.block_size;

  const std::vector<Tensor> logits = step(std::move(parts), nullptr);
  const int64_t vocab = config_.vocab_size;
  Tensor out = Tensor::empty({int64_t(logit_source.size()), vocab}, DType::F32);
  for (size_t i = 0; i < logit_source.size(); ++i) {
    const auto [r, row] = logit_source[i];
    std::memcpy(out.data<float>() + int64_t(i) * vocab, logits[size_t(r)].data<float>() + row * vocab,
                size_t(vocab) * sizeof(float));
  }
  return out;
}

std::vector<Tensor> LocalGroupExecutor::step(std::vector<ForwardBatch> parts, const ForwardBatch* whole) {
  std::unique_lock lock(mutex_);
  batch_ = whole;
  batches_ = std::move(parts);
  done_ = 0;
  step_error_ = nullptr;
  logits_.assign(size_t(options_.dp), Tensor());
  ++job_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_ == world_size(); });
  batch_ = nullptr;
  if (step_error_) std::rethrow_exception(step_error_);
  return std::move(logits_);
}

std::vector<LocalGroupExecutor::RankStats> LocalGroupExecutor::rank_stats() const {
  std::vector<RankStats> out;
  for (size_t r = 0; r < ranks_.size(); ++r) {
    const ModelStage& m = *ranks_[r]->model_stage;
    out.push_back({int(r), m.weight_bytes(), m.kv_cache_bytes(), m.seconds_in_collectives(),
                   ranks_[r]->worker->seconds_in_transfers(), m.all_to_all_stats(), m.context_parallel_stats()});
  }
  return out;
}

std::vector<std::vector<int64_t>> LocalGroupExecutor::expert_load() const {
  // The tp ranks of a stage agree; its cp ranks each routed their own tokens, so they add up.
  std::vector<std::vector<std::vector<int64_t>>> stages(size_t(options_.pp));  // [stage][layer][expert]
  for (const auto& r : ranks_) {                                               // (and the replicas each routed theirs)
    if (r->topology.layout.tp_rank != 0) continue;
    auto& stage = stages[size_t(r->topology.layout.pp_rank)];
    const auto load = r->model_stage->model().expert_load();
    if (stage.empty()) stage.assign(load.size(), {});
    for (size_t l = 0; l < load.size(); ++l) {
      stage[l].resize(load[l].size(), 0);
      for (size_t e = 0; e < load[l].size(); ++e) stage[l][e] += load[l][e];
    }
  }
  std::vector<std::vector<int64_t>> load;
  for (auto& stage : stages)
    for (auto& layer : stage) load.push_back(std::move(layer));
  return load;
}

size_t LocalGroupExecutor::decode_bytes_per_step() const {
  size_t b = 0;
  for (const auto& r : ranks_) b += r->model_stage->model().bytes_read_per_decode_step();
  return b;
}

void LocalGroupExecutor::reset_counters() {
  for (auto& r : ranks_) r->worker->reset_counters();
}

}  // namespace troupe
