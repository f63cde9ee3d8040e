#pragma once
// UcxWorker: one UCP context + worker + endpoints to the peers of a group, and bounded waits on
// tagged requests. Shared by the UCX collectives and the pipeline p2p transport.
//
// Waiting spins on ucp_worker_progress briefly, then yields, then sleeps in 50 us naps, so an idle
// rank waiting for the previous pipeline stage does not burn a core. With `wakeup` it instead arms
// the worker and sleeps in poll() on its event fd; but UCX 1.13 then excludes the shared-memory
// transports (posix/sysv/cma cannot signal), which costs 2-5x bandwidth between local ranks, so
// it is off by default.
// A dead peer is noticed by the wait timeout. Optionally (detect_peer_failure) endpoints use UCX
// peer error handling so it is noticed at once; but in UCX 1.13 that excludes the shared-memory
// transports (about 10x less bandwidth between local ranks), so it is off by default.
#include <ucp/api/ucp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/comm_timeout.hpp"

namespace troupe {

// Address exchange between the ranks of a group: given this rank's blob, returns every rank's
// blob indexed by rank (an all-gather). TcpRendezvous provides one; the actor layer will too.
using Bootstrap = std::function<std::vector<std::string>(const std::string& mine)>;

// Which UCX transports and network devices a worker may use, in UCX's own syntax (UCX_TLS and
// UCX_NET_DEVICES: "sm,self", "tcp", "eth0", "mlx5_0:1"); empty = UCX's default (all of them, every
// interface: a TCP listener on each address). They override the environment. The cluster restricts
// a one-host cluster to shared memory and a multi-host one to its nodes' interfaces.
struct UcxResources {
  std::string transports;
  std::string devices;
};

// One posted UCX tag operation (send or receive) and whom it involves, for error messages.
struct UcxRequest {
  void* request = nullptr;  // null once complete (or when it completed immediately)
  int peer = -1;
  bool is_recv = false;
  size_t bytes = 0;        // posted length (receive: capacity)
  size_t received = 0;     // filled when a receive completes
  bool exact_size = true;  // receive: fail unless exactly `bytes` arrive (else up to `bytes`)
  std::string failure;     // non-empty if it completed with an error
  bool done() const { return request == nullptr; }
};

class UcxWorker {
 public:
  // `who` names the owner in errors ("ucx group 'tp'"). thread_safe: the worker may be driven
  // from two threads (a p2p op concurrent with an async op).
  UcxWorker(std::string who, int rank, int size, bool thread_safe, bool wakeup = false,
            bool detect_peer_failure = false, const UcxResources& resources = {});
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  // Exchanges worker addresses through `bootstrap` and connects to every other rank.
  void connect_all(const Bootstrap& bootstrap);
  int rank() const { return rank_; }
  int size() const { return size_; }

  UcxRequest send(int peer, const void* data, size_t bytes, uint64_t tag);
  UcxRequest recv(int peer, void* data, size_t bytes, uint64_t tag);  // exact tag match

  // Waits for all `requests`; on timeout or a failed request cancels the rest and throws
  // "<who> <op>: rank P did not send ... within T ms" (or the failure).
  void wait_all(std::vector<UcxRequest>& requests, const char* op, std::chrono::milliseconds timeout);
  void wait(UcxRequest& request, const char* op, std::chrono::milliseconds timeout);
  // A peer whose endpoint reported an error ("" if none).
  std::string peer_failure(int peer) const;

  // Non-blocking: true once `r` completed (its request is then released).
  bool test(UcxRequest& r);
  // Cancels and releases whatever is still pending (after a failure).
  void cancel(std::vector<UcxRequest>& requests);
  // Progresses (and runs the hook) until ready() or the deadline; returns ready().
  bool progress_until(const std::function<bool()>& ready, const Deadline& deadline);
  // Called on every turn of a wait loop, from the waiting thread: lets the p2p transport post
  // payload receives as soon as their headers arrive, whichever handle is being waited on.
  void set_progress_hook(std::function<void()> hook) { hook_ = std::move(hook); }

 private:
  void progress_or_sleep(int& idle_spins, const Deadline& deadline);
  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status);

  std::string who_;
  int rank_, size_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int event_fd_ = -1;  // only with wakeup
  bool detect_peer_failure_ = false;
  int spin_limit_ = 2000;  // idle progress calls before yielding, then 10x that before napping
  std::vector<ucp_ep_h> eps_;
  std::function<void()> hook_;
  struct PeerState;
  std::vector<std::unique_ptr<PeerState>> peers_;
};

}  // namespace troupe
