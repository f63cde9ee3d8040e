#pragma once
// ShmCommunicator: collectives for ranks on one host (processes or threads) through one POSIX
// shared-memory segment. Each op is a sequence of "steps": every rank copies a chunk into its own
// slot, publishes a step counter, and waits (bounded spin, then yield, then short naps) until all
// ranks have published; then it reads the other slots. Slots are double-buffered by step parity,
// so one counter per rank per step is the only synchronisation: a small all_reduce is two
// memcpys, one reduction and a few cache-line transfers, no syscall.
// send/recv use a separate double-buffered mailbox per ordered pair of ranks.
#include <cstddef>
#include <memory>
#include <string>

#include "comm/device_communicator.hpp"

namespace troupe {

struct ShmOptions {
  CommGroupInfo info;
  // Names the segment; every rank of the group passes the same name, unique per group and job
  // (e.g. "troupe-<job>-tp-0"). Rank 0 creates it and unlinks it once all ranks have attached.
  std::string segment;
  size_t slot_bytes = 512 << 10;     // per rank per parity; larger messages are chunked
  size_t mailbox_bytes = 256 << 10;  // per ordered pair per half, for send/recv
  // all_reduce chunks of at least this many bytes on more than 2 ranks are reduced split (each
  // rank reduces 1/n, one extra step), which cuts the memory each rank reads by about n / 2.
  size_t split_reduce_min_bytes = 64 << 10;
};

class ShmCommunicator final : public DeviceCommunicator {
 public:
  // Blocks until every rank of the group has attached (or fails after info.timeout naming the
  // ranks that never came).
  explicit ShmCommunicator(ShmOptions options);
  ~ShmCommunicator() override;
  const char* backend() const override { return "shm"; }

 protected:
  void do_all_reduce(Tensor& tensor, ReduceOp op) override;
  void do_all_gather(const Tensor& input, Tensor& output) override;
  void do_reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void do_broadcast(Tensor& tensor, int root) override;
  void do_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                     const std::vector<int64_t>& recv_rows) override;
  void do_send(const Tensor& tensor, int dst) override;
  void do_recv(Tensor& tensor, int src) override;
  void do_barrier() override;

 private:
  struct Segment;
  char* my_slot() const;
  const char* slot(int rank) const;  // for the current step's parity
  // Publishes this rank's slot for the current step (with `more` as a flag others can read) and
  // waits for all ranks; afterwards slot(j) holds rank j's data for this step.
  void step(const char* op, bool more = false);
  bool any_more() const;  // after step(): did any rank set `more`?
  void check_usable(const char* op) const;
  [[noreturn]] void fail_wait(const char* op, int missing, const char* what);
  void check_alive(const char* op, int peer);

  ShmOptions options_;
  std::unique_ptr<Segment> segment_;
  uint64_t steps_ = 0;  // completed steps; the current step's parity is steps_ % 2
  std::string broken_;  // set by the first failure: the group is unusable after a timeout
  int spins_ = 4096;    // busy polls before yielding; few when ranks outnumber the cores
};

}  // namespace troupe
