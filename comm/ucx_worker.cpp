#include "comm/ucx_worker.hpp"

#include <poll.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "kernels/error.hpp"

namespace troupe {

// Per peer: what the endpoint error handler reported. The handler runs inside ucp_worker_progress,
// which (thread_safe workers) any thread may call, so the failure is read and written under a lock.
struct UcxWorker::PeerState {
  explicit PeerState(int rank) : rank(rank) {}
  const int rank;
  void set_failure(std::string why) {
    std::lock_guard lock(mutex);
    failure = std::move(why);
  }
  std::string get_failure() const {
    std::lock_guard lock(mutex);
    return failure;
  }

 private:
  mutable std::mutex mutex;
  std::string failure;
};

namespace {

void check(ucs_status_t status, const std::string& who, const char* what) {
  if (status != UCS_OK) fail("{}: {} failed: {}", who, what, ucs_status_string(status));
}

}  // namespace

UcxWorker::UcxWorker(std::string who, int rank, int size, bool thread_safe, bool wakeup, bool detect_peer_failure,
                     const UcxResources& resources)
    : who_(std::move(who)), rank_(rank), size_(size), detect_peer_failure_(detect_peer_failure) {
  ucp_config_t* config = nullptr;
  check(ucp_config_read(nullptr, nullptr, &config), who_, "ucp_config_read");
  for (const auto& [name, value] : {std::pair{"TLS", &resources.transports}, {"NET_DEVICES", &resources.devices}}) {
    if (value->empty()) continue;
    const ucs_status_t modified = ucp_config_modify(config, name, value->c_str());
    if (modified != UCS_OK) {
      ucp_config_release(config);
      fail("{}: UCX_{} = '{}' refused by UCX: {}", who_, name, *value, ucs_status_string(modified));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG | (wakeup ? UCP_FEATURE_WAKEUP : 0);
  params.mt_workers_shared = 0;
  ucs_status_t status = ucp_init(&params, config, &context_);
  ucp_config_release(config);
  if (status != UCS_OK && !(resources.transports.empty() && resources.devices.empty()))
    fail("{}: UCX found no usable transport with UCX_TLS = '{}' and UCX_NET_DEVICES = '{}' ({})", who_,
         resources.transports, resources.devices, ucs_status_string(status));
  check(status, who_, "ucp_init");
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE | (wakeup ? UCP_WORKER_PARAM_FIELD_EVENTS : 0);
  wp.thread_mode = thread_safe ? UCS_THREAD_MODE_MULTI : UCS_THREAD_MODE_SINGLE;
  wp.events = UCP_WAKEUP_TAG_SEND | UCP_WAKEUP_TAG_RECV;
  status = ucp_worker_create(context_, &wp, &worker_);
  if (status != UCS_OK) {
    ucp_cleanup(context_);
    check(status, who_, "ucp_worker_create");
  }
  if (wakeup && ucp_worker_get_efd(worker_, &event_fd_) != UCS_OK) event_fd_ = -1;  // fall back to naps
  eps_.assign(size_t(size_), nullptr);
  // Oversubscribed (more ranks than cores, if they share this host): spinning only delays the
  // rank being waited for, so yield early.
  if (unsigned(size_) > std::thread::hardware_concurrency()) spin_limit_ = 50;
  for (int r = 0; r < size_; ++r) peers_.push_back(std::make_unique<PeerState>(r));
}

UcxWorker::~UcxWorker() {
  // Flush-close each endpoint (so the last eager sends reach live peers), bounded in time so a
  // dead peer cannot hang the destructor; then force-release whatever is left.
  Deadline deadline(std::chrono::milliseconds(2000));
  for (auto& ep : eps_) {
    if (!ep) continue;
    ucp_request_param_t p{};
    void* req = ucp_ep_close_nbx(ep, &p);
    if (UCS_PTR_IS_PTR(req)) {
      while (ucp_request_check_status(req) == UCS_INPROGRESS && !deadline.expired()) ucp_worker_progress(worker_);
      if (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_request_cancel(worker_, req);
      ucp_request_free(req);
    }
    ep = nullptr;
  }
  if (worker_) ucp_worker_destroy(worker_);
  if (context_) ucp_cleanup(context_);
}

void UcxWorker::on_ep_error(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* peer = static_cast<PeerState*>(arg);
  peer->set_failure(fmt::format("connection to rank {} failed ({})", peer->rank, ucs_status_string(status)));
}

std::string UcxWorker::peer_failure(int peer) const { return peers_[size_t(peer)]->get_failure(); }

void UcxWorker::connect_all(const Bootstrap& bootstrap) {
  ucp_address_t* address = nullptr;
  size_t length = 0;
  check(ucp_worker_get_address(worker_, &address, &length), who_, "ucp_worker_get_address");
  std::string mine(reinterpret_cast<const char*>(address), length);
  ucp_worker_release_address(worker_, address);
  std::vector<std::string> all = bootstrap(mine);
  if (all.size() != size_t(size_))
    fail("{}: bootstrap returned {} worker addresses, expected {}", who_, all.size(), size_);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    ucp_ep_params_t ep{};
    ep.field_mask =
        UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.address = reinterpret_cast<const ucp_address_t*>(all[size_t(r)].data());
    ep.err_mode = detect_peer_failure_ ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE;
    ep.err_handler.cb = &UcxWorker::on_ep_error;
    ep.err_handler.arg = peers_[size_t(r)].get();
    ucs_status_t status = ucp_ep_create(worker_, &ep, &eps_[size_t(r)]);
    if (status != UCS_OK) fail("{}: cannot connect to rank {}: {}", who_, r, ucs_status_string(status));
  }
}

UcxRequest UcxWorker::send(int peer, const void* data, size_t bytes, uint64_t tag) {
  UcxRequest r;
  r.peer = peer;
  r.bytes = bytes;
  if (std::string failed = peer_failure(peer); !failed.empty()) fail("{}: send: {}", who_, failed);
  ucp_request_param_t p{};
  void* req = ucp_tag_send_nbx(eps_[size_t(peer)], data, bytes, tag, &p);
  if (UCS_PTR_IS_ERR(req)) fail("{}: send to rank {} failed: {}", who_, peer, ucs_status_string(UCS_PTR_STATUS(req)));
  r.request = req;
  return r;
}

UcxRequest UcxWorker::recv(int peer, void* data, size_t bytes, uint64_t tag) {
  UcxRequest r;
  r.peer = peer;
  r.is_recv = true;
  r.bytes = bytes;
  // UCX 1.13 does not fill recv_info on immediate completion, so always take a request and read
  // the received length from ucp_tag_recv_request_test (needed to report size mismatches).
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  void* req = ucp_tag_recv_nbx(worker_, data, bytes, tag, ~uint64_t(0), &p);
  if (UCS_PTR_IS_ERR(req))
    fail("{}: receive from rank {} failed: {}", who_, peer, ucs_status_string(UCS_PTR_STATUS(req)));
  r.request = req;
  return r;
}

bool UcxWorker::test(UcxRequest& r) {
  if (r.done()) return true;
  ucs_status_t status;
  if (r.is_recv) {
    ucp_tag_recv_info_t info{};
    status = ucp_tag_recv_request_test(r.request, &info);
    if (status == UCS_OK) r.received = info.length;
  } else {
    status = ucp_request_check_status(r.request);
  }
  if (status == UCS_INPROGRESS) return false;
  if (status != UCS_OK) r.failure = ucs_status_string(status);
  ucp_request_free(r.request);
  r.request = nullptr;
  return true;
}

void UcxWorker::progress_or_sleep(int& idle_spins, const Deadline& deadline) {
  if (ucp_worker_progress(worker_)) {
    idle_spins = 0;
    return;
  }
  ++idle_spins;
  if (idle_spins < spin_limit_) return;
  // Nothing moved for a while: sleep until the worker has an event, or yield and then nap.
  if (event_fd_ >= 0) {
    ucs_status_t armed = ucp_worker_arm(worker_);
    if (armed == UCS_ERR_BUSY) return;  // events pending: progress again
    pollfd pfd{event_fd_, POLLIN, 0};
    poll(&pfd, 1, std::min(deadline.remaining_ms(), 10));
  } else {
    nap_microseconds(idle_spins < spin_limit_ * 10 ? 0 : 50);
  }
}

void UcxWorker::cancel(std::vector<UcxRequest>& requests) {
  for (auto& r : requests)
    if (!r.done()) ucp_request_cancel(worker_, r.request);
  // Cancelled receives complete on the next progress; bound the cleanup, then let go.
  Deadline cleanup(std::chrono::milliseconds(200));
  for (auto& r : requests) {
    while (!test(r) && !cleanup.expired()) ucp_worker_progress(worker_);
    if (!r.done()) {
      ucp_request_free(r.request);
      r.request = nullptr;
    }
  }
}

void UcxWorker::wait_all(std::vector<UcxRequest>& requests, const char* op, std::chrono::milliseconds timeout) {
  Deadline deadline(timeout);
  int idle = 0;
  for (;;) {
    bool all = true;
    for (auto& r : requests) {
      bool complete = test(r);
      std::string peer_failed = peer_failure(r.peer);
      if (!r.failure.empty() || (!complete && !peer_failed.empty())) {
        std::string why = !peer_failed.empty() ? peer_failed : r.failure;
        cancel(requests);
        fail("{} {}: {} rank {} failed: {}", who_, op, r.is_recv ? "receive from" : "send to", r.peer, why);
      }
      if (complete && r.is_recv && r.exact_size && r.received != r.bytes) {
        cancel(requests);
        fail("{} {}: rank {} sent {} bytes, rank {} expected {}", who_, op, r.peer, r.received, rank_, r.bytes);
      }
      all = all && complete;
    }
    if (all) return;
    if (deadline.expired()) {
      // `all` is false: some request is still pending.
      const auto& r = *std::find_if(requests.begin(), requests.end(), [](const UcxRequest& q) { return !q.done(); });
      std::string msg = fmt::format("{} {}: rank {} did not {} within {} ms (rank {} of {} waiting)", who_, op, r.peer,
                                    r.is_recv ? "send" : "receive", timeout.count(), rank_, size_);
      cancel(requests);
      throw Error(msg);
    }
    if (hook_) hook_();
    progress_or_sleep(idle, deadline);
  }
}

bool UcxWorker::progress_until(const std::function<bool()>& ready, const Deadline& deadline) {
  int idle = 0;
  for (;;) {
    if (hook_) hook_();
    if (ready()) return true;
    if (deadline.expired()) return false;
    progress_or_sleep(idle, deadline);
  }
}

void UcxWorker::wait(UcxRequest& request, const char* op, std::chrono::milliseconds timeout) {
  std::vector<UcxRequest> one{request};
  request.request = nullptr;
  wait_all(one, op, timeout);
  request = one[0];
}

}  // namespace troupe
