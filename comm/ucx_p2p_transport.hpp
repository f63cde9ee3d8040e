#pragma once
// UcxP2PTransport: point-to-point IntermediateTensors between pipeline stages over UCX. One UCX
// worker per rank; worker addresses are exchanged through a Bootstrap. send_async/recv_async post
// nonblocking tagged operations and return handles; waiting progresses the worker with a short
// spin and then sleeps on its event fd, so an idle stage waiting for its predecessor costs no CPU.
//
// A transport is driven by one thread at a time (like a communicator); handles may be waited on
// in any order. Messages between a pair of ranks with the same user tag are matched in order (a per-pair
// sequence number is part of the UCX tag). CPU tensors only (this UCX build has no CUDA memory
// support; device tensors go through NCCL).
#include <map>
#include <memory>
#include <mutex>

#include "comm/intermediate_tensors.hpp"
#include "comm/ucx_worker.hpp"

namespace troupe {

struct P2POptions {
  std::string name = "pp";  // appears in errors
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout = default_comm_timeout();
  size_t max_header_bytes = 64 << 10;
  bool detect_peer_failure = false;  // see UcxOptions
  bool thread_safe = false;          // sends and receives may be driven from different threads
  UcxResources resources{};          // transports and devices UCX may use
  // Every header carries this; a receive whose header carries another (a stale run's message, a
  // foreign sender's) fails instead of delivering tensors. The cluster sets it per run at random.
  uint64_t run_nonce = 0;
};

class UcxP2PTransport;

// An in-flight send; keeps the tensors alive until wait() returns.
class P2PSendHandle {
 public:
  P2PSendHandle() = default;
  P2PSendHandle(P2PSendHandle&&) = default;
  P2PSendHandle& operator=(P2PSendHandle&&) = default;
  // Waits (ignoring errors) if still pending: UCX may be reading the tensors until then.
  ~P2PSendHandle();
  void wait();

 private:
  friend class UcxP2PTransport;
  UcxP2PTransport* transport_ = nullptr;
  std::shared_ptr<std::string> header_;
  IntermediateTensors tensors_;
  std::vector<UcxRequest> requests_;
};

// An in-flight receive: the header receive is posted at recv_async; as soon as the header arrives
// (noticed by any wait on the transport) the tensors are allocated and their payload receives
// posted, so several messages stream at once. wait() returns the tensors.
struct P2PRecvState;
class P2PRecvHandle {
 public:
  IntermediateTensors wait();

 private:
  friend class UcxP2PTransport;
  UcxP2PTransport* transport_ = nullptr;
  std::shared_ptr<P2PRecvState> state_;
};

class UcxP2PTransport {
 public:
  UcxP2PTransport(P2POptions options, const Bootstrap& bootstrap);
  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

  P2PSendHandle send_async(const IntermediateTensors& tensors, int dst, uint32_t tag = 0);
  // `reuse`: buffers from an earlier receive; when the incoming names, dtypes and shapes match,
  // the payloads land in them instead of fresh allocations (a steady pipeline then allocates and
  // page-faults nothing per step). Otherwise new tensors are allocated.
  P2PRecvHandle recv_async(int src, uint32_t tag = 0, IntermediateTensors reuse = {});
  void send(const IntermediateTensors& tensors, int dst, uint32_t tag = 0) { send_async(tensors, dst, tag).wait(); }
  IntermediateTensors recv(int src, uint32_t tag = 0, IntermediateTensors reuse = {}) {
    return recv_async(src, tag, std::move(reuse)).wait();
  }

 private:
  friend class P2PSendHandle;
  friend class P2PRecvHandle;
  void check_peer(int peer, const char* op) const;
  uint64_t next_tag_base(std::map<std::pair<int, uint32_t>, uint32_t>& counters, int peer, uint32_t tag, int src);
  // With mutex_ held: posts the payload receives of every pending receive whose header arrived.
  void advance_pending();
  void post_payloads(P2PRecvState& state);

  P2POptions options_;
  std::unique_ptr<UcxWorker> worker_;
  std::mutex mutex_;  // counters and pending receives (handles may be used from several threads)
  std::map<std::pair<int, uint32_t>, uint32_t> sent_, received_;
  std::vector<std::shared_ptr<P2PRecvState>> pending_;  // header posted, payloads not yet
};

}  // namespace troupe
