#include "actors/local_group_executor.hpp"

#include <unistd.h>

#include <atomic>

#include "comm/shm_communicator.hpp"
#include "comm/tcp_rendezvous.hpp"
#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"

namespace troupe {

namespace {
std::atomic<int> executor_serial{0};
}

LocalGroupExecutor::LocalGroupExecutor(const std::filesystem::path& model_dir, const LocalGroupOptions& options,
                                       const std::function<void(int64_t, int64_t)>& on_progress)
    : config_(ModelConfig::load(model_dir)), options_(options), on_progress_(on_progress) {
  validate_layout(config_, options.tp, options.pp, options.pp_partition, options.ep);  // before any weight is touched
  weights_ = WeightStore::open(model_dir);
  auto [first, end] =
      ParallelLayout{0, 1, 0, options.pp, 1, options.pp_partition, {}}.layer_range(config_.num_hidden_layers);
  int64_t stage_layers = end - first;
  auto [kv_b, kv_e] = kv_head_range(config_.num_key_value_heads, options.tp, 0);
  num_blocks_ = kv_blocks_for(options.kv, config_, stage_layers, kv_e - kv_b);

  const int port = options.pp > 1 ? TcpRendezvous::free_port() : 0;
  const std::string shm_prefix = fmt::format("troupe-{}-{}", ::getpid(), executor_serial++);
  for (int r = 0; r < world_size(); ++r)
    threads_.emplace_back([this, r, port, shm_prefix] { rank_main(r, port, shm_prefix); });
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return ready_ == world_size(); });
  if (startup_error_) {
    stop_ = true;
    cv_.notify_all();
    lock.unlock();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::rethrow_exception(startup_error_);
  }
}

LocalGroupExecutor::~LocalGroupExecutor() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void LocalGroupExecutor::rank_main(int rank, int rendezvous_port, const std::string& shm_prefix) {
  const int cores = ThreadPool::default_thread_count();
  ThreadPool pool(options_.threads_per_rank > 0 ? options_.threads_per_rank : std::max(1, cores / world_size()));
  ScopedThreadPool scope(pool);
  std::unique_ptr<RankWorker> worker;
  std::unique_ptr<UcxP2PTransport> transport;
  std::shared_ptr<DeviceCommunicator> tp_comm;
  try {
    RankPlacement placement = place_rank(rank, options_.tp, options_.pp, options_.pp_partition, options_.ep);
    placement.layout.replicated_experts = options_.replicated_experts;
    if (options_.tp > 1) {
      ShmOptions shm;
      shm.info = CommGroupInfo{"tp", placement.layout.tp_rank, options_.tp, options_.timeout};
      shm.segment = fmt::format("{}-tp-{}", shm_prefix, placement.layout.pp_rank);
      tp_comm = std::make_shared<ShmCommunicator>(shm);
    }
    if (options_.pp > 1) {
      TcpRendezvous rendezvous("127.0.0.1", rendezvous_port, rank, world_size(), options_.timeout);
      P2POptions p2p{"pp", rank, world_size(), options_.timeout};
      p2p.thread_safe = true;  // RankWorker sends from its sender thread
      transport = std::make_unique<UcxP2PTransport>(p2p, rendezvous.bootstrap());
    }
    auto progress = rank == 0 ? on_progress_ : std::function<void(int64_t, int64_t)>();
    worker = std::make_unique<RankWorker>(config_, weights_, placement, num_blocks_, options_.kv.block_size, tp_comm,
                                          transport.get(), progress);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!startup_error_) startup_error_ = std::current_exception();
  }
  uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  if (workers_.empty()) workers_.resize(size_t(world_size()));
  workers_[size_t(rank)] = std::move(worker);
  ++ready_;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_ != seen; });
    if (stop_) break;
    seen = job_;
    const ForwardBatch* batch = batch_;
    RankWorker* w = workers_[size_t(rank)].get();
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
    if (w->placement().layout.last_stage() && w->placement().layout.tp_rank == 0) logits_ = logits;
    ++done_;
    cv_.notify_all();
  }
  lock.unlock();
  // The transport and communicator must outlive the worker; destroy in reverse order of creation.
  std::lock_guard relock(mutex_);
  workers_[size_t(rank)].reset();
}

Tensor LocalGroupExecutor::execute(const ForwardBatch& batch) {
  std::unique_lock lock(mutex_);
  batch_ = &batch;
  done_ = 0;
  step_error_ = nullptr;
  logits_ = Tensor();
  ++job_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_ == world_size(); });
  batch_ = nullptr;
  if (step_error_) std::rethrow_exception(step_error_);
  return logits_;
}

std::vector<LocalGroupExecutor::RankStats> LocalGroupExecutor::rank_stats() const {
  std::vector<RankStats> out;
  for (size_t r = 0; r < workers_.size(); ++r)
    out.push_back({int(r), workers_[r]->model().weight_bytes(), workers_[r]->kv_cache_bytes(),
                   workers_[r]->seconds_in_collectives(), workers_[r]->seconds_in_transfers(),
                   workers_[r]->all_to_all_stats()});
  return out;
}

std::vector<std::vector<int64_t>> LocalGroupExecutor::expert_load() const {
  std::vector<std::vector<int64_t>> load;
  for (const auto& w : workers_)  // tp rank 0 of each stage, stages in order (the tp ranks agree)
    if (w->placement().layout.tp_rank == 0)
      for (auto& layer : w->model().expert_load()) load.push_back(layer);
  return load;
}

size_t LocalGroupExecutor::decode_bytes_per_step() const {
  size_t b = 0;
  for (const auto& w : workers_) b += w->model().bytes_read_per_decode_step();
  return b;
}

void LocalGroupExecutor::reset_counters() {
  for (auto& w : workers_) w->reset_counters();
}

}  // namespace troupe
