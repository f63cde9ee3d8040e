#pragma once
// TcpRendezvous: the simple bootstrap for tests and benchmarks. Rank 0 listens on host:port; the
// other ranks connect (retrying until rank 0 is up) and keep the connection for later exchanges.
// all_gather() collects one blob per rank at rank 0 and sends the full list back to everyone.
// Every wait is bounded by the timeout and fails naming the rank that did not show up.
#include <chrono>
#include <string>
#include <vector>

#include "comm/ucx_worker.hpp"

namespace troupe {

class TcpRendezvous {
 public:
  TcpRendezvous(std::string host, int port, int rank, int size, std::chrono::milliseconds timeout);
  ~TcpRendezvous();
  TcpRendezvous(const TcpRendezvous&) = delete;
  TcpRendezvous& operator=(const TcpRendezvous&) = delete;

  std::vector<std::string> all_gather(const std::string& mine);
  // A Bootstrap that calls all_gather (this object must outlive its use).
  Bootstrap bootstrap() {
    return [this](const std::string& mine) { return all_gather(mine); };
  }

  // A port that was free a moment ago on 127.0.0.1 (for tests that spawn all ranks themselves).
  static int free_port();

 private:
  void accept_all();
  std::string host_;
  int port_, rank_, size_;
  std::chrono::milliseconds timeout_;
  int listen_fd_ = -1;
  std::vector<int> fds_;  // rank 0: one per peer rank (index = rank); others: fds_[0] to rank 0
};

}  // namespace troupe
