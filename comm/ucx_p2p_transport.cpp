#include "comm/ucx_p2p_transport.hpp"

#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

namespace {

// Tag layout: kind 3 (4 bits) | user tag (16) | sequence (20) | message index (8) | source (16).
// Index 0 is the header, index i + 1 the payload of tensor i.
constexpr uint64_t kP2PKind = 3;
constexpr size_t kMaxTensors = 255;

uint64_t with_index(uint64_t base, size_t index) { return base | (uint64_t(index) << 16); }

}  // namespace

UcxP2PTransport::UcxP2PTransport(P2POptions options, const Bootstrap& bootstrap) : options_(std::move(options)) {
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    fail("p2p '{}': rank {} outside a world of {}", options_.name, options_.rank, options_.world_size);
  if (options_.world_size > (1 << 16))
    fail("p2p '{}': {} ranks exceed the tag layout's 2^16", options_.name, options_.world_size);
  worker_ = std::make_unique<UcxWorker>(fmt::format("p2p '{}'", options_.name), options_.rank, options_.world_size,
                                        options_.thread_safe, false, options_.detect_peer_failure, options_.resources);
  worker_->connect_all(bootstrap);
  worker_->set_progress_hook([this] {
    std::lock_guard lock(mutex_);
    advance_pending();
  });
}

void UcxP2PTransport::check_peer(int peer, const char* op) const {
  if (peer < 0 || peer >= world_size() || peer == rank())
    fail("p2p '{}' {}: peer rank {} is not another rank of the world of {} (this is rank {})", options_.name, op, peer,
         world_size(), rank());
}

uint64_t UcxP2PTransport::next_tag_base(std::map<std::pair<int, uint32_t>, uint32_t>& counters, int peer, uint32_t tag,
                                        int src) {
  if (tag > 0xffff) fail("p2p '{}': user tag {} exceeds 16 bits", options_.name, tag);
  std::lock_guard lock(mutex_);
  uint32_t seq = counters[{peer, tag}]++;
  return kP2PKind << 60 | uint64_t(tag) << 44 | uint64_t(seq & 0xfffff) << 24 | uint64_t(src);
}

P2PSendHandle UcxP2PTransport::send_async(const IntermediateTensors& tensors, int dst, uint32_t tag) {
  check_peer(dst, "send");
  if (tensors.size() > kMaxTensors)
    fail("p2p '{}' send: {} tensors exceed {}", options_.name, tensors.size(), kMaxTensors);
  for (const auto& [name, t] : tensors)
    if (!t.device().is_cpu())
      fail("p2p '{}' send: tensor '{}' is on {}; the UCX transport moves CPU tensors", options_.name, name,
           t.device().str());
  P2PSendHandle h;
  h.transport_ = this;
  h.tensors_ = tensors;
  h.header_ = std::make_shared<std::string>(sizeof options_.run_nonce, '\0');
  std::memcpy(h.header_->data(), &options_.run_nonce, sizeof options_.run_nonce);
  *h.header_ += tensors.encode_header();
  if (h.header_->size() > options_.max_header_bytes)
    fail("p2p '{}' send: header of {} bytes exceeds max_header_bytes {}", options_.name, h.header_->size(),
         options_.max_header_bytes);
  uint64_t base = next_tag_base(sent_, dst, tag, rank());
  h.requests_.push_back(worker_->send(dst, h.header_->data(), h.header_->size(), with_index(base, 0)));
  size_t i = 1;
  for (const auto& [name, t] : h.tensors_)
    h.requests_.push_back(worker_->send(dst, t.raw(), t.nbytes(), with_index(base, i++)));
  return h;
}

P2PSendHandle::~P2PSendHandle() {
  try {
    wait();
  } catch (const Error&) {
    // The error was the caller's to see through wait(); a destructor must not throw.
  }
}

void P2PSendHandle::wait() {
  if (requests_.empty()) return;
  transport_->worker_->wait_all(requests_, "send", transport_->options_.timeout);
  requests_.clear();
  tensors_ = {};
}

struct P2PRecvState {
  int peer = -1;
  uint64_t tag_base = 0;
  std::unique_ptr<char[]> header;  // max_header_bytes, not zero-filled (it is per message)
  UcxRequest header_request;
  IntermediateTensors reuse, tensors;
  std::vector<UcxRequest> payloads;
  bool posted = false;  // payload receives are out (or the header failed: see header_request)
  std::string error;    // a bad header
};

P2PRecvHandle UcxP2PTransport::recv_async(int src, uint32_t tag, IntermediateTensors reuse) {
  check_peer(src, "recv");
  auto state = std::make_shared<P2PRecvState>();
  state->peer = src;
  state->tag_base = next_tag_base(received_, src, tag, src);
  state->header.reset(new char[options_.max_header_bytes]);
  state->reuse = std::move(reuse);
  std::lock_guard lock(mutex_);
  state->header_request =
      worker_->recv(src, state->header.get(), options_.max_header_bytes, with_index(state->tag_base, 0));
  state->header_request.exact_size = false;  // the header's length is known only once it arrives
  pending_.push_back(state);
  P2PRecvHandle h;
  h.transport_ = this;
  h.state_ = std::move(state);
  return h;
}

void UcxP2PTransport::post_payloads(P2PRecvState& s) {
  s.posted = true;
  if (!s.header_request.failure.empty()) return;  // wait() reports it
  try {
    uint64_t nonce = 0;
    if (s.header_request.received < sizeof nonce)
      fail("p2p '{}' recv from rank {}: a header of {} bytes is too short for the run nonce", options_.name, s.peer,
           s.header_request.received);
    std::memcpy(&nonce, s.header.get(), sizeof nonce);
    if (nonce != options_.run_nonce)
      fail(
          "p2p '{}' recv from rank {}: the message belongs to run {:016x}, not this run {:016x} (stale or foreign): "
          "refused",
          options_.name, s.peer, nonce, options_.run_nonce);
    std::string header(s.header.get() + sizeof nonce, s.header_request.received - sizeof nonce);
    s.tensors = IntermediateTensors::reuse_or_allocate(header, std::move(s.reuse));
    size_t i = 1;
    for (const auto& [name, tensor] : s.tensors)
      s.payloads.push_back(worker_->recv(s.peer, tensor.raw(), tensor.nbytes(), with_index(s.tag_base, i++)));
  } catch (const Error& e) {
    s.error = e.what();
  }
}

void UcxP2PTransport::advance_pending() {
  std::erase_if(pending_, [&](const std::shared_ptr<P2PRecvState>& s) {
    if (!worker_->test(s->header_request)) return false;
    post_payloads(*s);
    return true;
  });
}

IntermediateTensors P2PRecvHandle::wait() {
  if (!transport_) fail("p2p recv: wait() on an empty or already-waited handle");
  UcxP2PTransport& t = *transport_;
  transport_ = nullptr;
  P2PRecvState& s = *state_;
  Deadline deadline(t.options_.timeout);
  bool ready = t.worker_->progress_until(
      [&] {
        std::lock_guard lock(t.mutex_);
        return s.posted || !t.worker_->peer_failure(s.peer).empty();
      },
      deadline);
  if (!ready || !s.posted) {
    std::lock_guard lock(t.mutex_);
    std::erase(t.pending_, state_);
    std::vector<UcxRequest> header{s.header_request};
    s.header_request.request = nullptr;
    t.worker_->cancel(header);
    std::string peer_failed = t.worker_->peer_failure(s.peer);
    fail("p2p '{}' recv: rank {} {} (rank {} waiting)", t.options_.name, s.peer,
         peer_failed.empty() ? fmt::format("did not send within {} ms", t.options_.timeout.count()) : peer_failed,
         t.rank());
  }
  if (!s.header_request.failure.empty()) {
    std::vector<UcxRequest> header{s.header_request};
    t.worker_->wait_all(header, "recv", t.options_.timeout);  // throws with the failure
  }
  if (!s.error.empty()) fail("p2p '{}' recv from rank {}: {}", t.options_.name, s.peer, s.error);
  t.worker_->wait_all(s.payloads, "recv", t.options_.timeout);
  return std::move(s.tensors);
}

}  // namespace troupe
