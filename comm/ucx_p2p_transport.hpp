#pragma once
// UcxP2PTransport: point-to-point IntermediateTensors between pipeline stages over UCX. One UCX
// worker per rank; worker addresses are exchanged through a Bootstrap. send_async/recv_async post
// nonblocking tagged operations and return handles; waiting progresses the worker with a short
// spin and then sleeps on its event fd, so an idle stage waiting for its predecessor costs no CPU.
//
// Messages between a pair of ranks with the same user tag are matched in order (a per-pair
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
  std::chrono::milliseconds timeout{60000};
  size_t max_header_bytes = 64 << 10;
};

class UcxP2PTransport;

// An in-flight send; keeps the tensors alive until wait() returns.
class P2PSendHandle {
 public:
  void wait();
  bool pending() const { return !requests_.empty(); }

 private:
  friend class UcxP2PTransport;
  UcxP2PTransport* transport_ = nullptr;
  int peer_ = -1;
  std::shared_ptr<std::string> header_;
  IntermediateTensors tensors_;
  std::vector<UcxRequest> requests_;
};

// An in-flight receive: the header is posted at recv_async; wait() reads it, allocates the
// tensors, receives the payloads and returns them.
class P2PRecvHandle {
 public:
  IntermediateTensors wait();

 private:
  friend class UcxP2PTransport;
  UcxP2PTransport* transport_ = nullptr;
  int peer_ = -1;
  uint64_t tag_base_ = 0;
  std::shared_ptr<std::vector<char>> header_;
  UcxRequest header_request_;
};

class UcxP2PTransport {
 public:
  UcxP2PTransport(P2POptions options, const Bootstrap& bootstrap);
  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

  P2PSendHandle send_async(const IntermediateTensors& tensors, int dst, uint32_t tag = 0);
  P2PRecvHandle recv_async(int src, uint32_t tag = 0);
  void send(const IntermediateTensors& tensors, int dst, uint32_t tag = 0) { send_async(tensors, dst, tag).wait(); }
  IntermediateTensors recv(int src, uint32_t tag = 0) { return recv_async(src, tag).wait(); }

 private:
  friend class P2PSendHandle;
  friend class P2PRecvHandle;
  void check_peer(int peer, const char* op) const;
  uint64_t next_tag_base(std::map<std::pair<int, uint32_t>, uint32_t>& counters, int peer, uint32_t tag, int src);

  P2POptions options_;
  std::unique_ptr<UcxWorker> worker_;
  std::mutex mutex_;  // the sequence counters (handles may be created from several threads)
  std::map<std::pair<int, uint32_t>, uint32_t> sent_, received_;
};

}  // namespace troupe
