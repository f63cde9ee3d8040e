#include "comm/shm_communicator.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <thread>

#include "comm/comm_timeout.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

constexpr uint64_t kMagic = 0x74726f7570657368ull;  // "troupesh"
constexpr size_t kLine = 64;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

struct Header {
  std::atomic<uint64_t> magic;  // stored last by the creator: the layout below is initialised
  uint32_t size;
  uint64_t slot_bytes;
  uint64_t mailbox_bytes;
  std::atomic<uint32_t> attached;
};

// One cache line per rank so publishing a step does not invalidate the neighbours' lines.
struct alignas(kLine) RankControl {
  std::atomic<uint64_t> arrived;  // steps completed by this rank
  std::atomic<uint32_t> more[2];  // per parity: "I have more data after this step"
  std::atomic<int32_t> pid;
};

struct alignas(kLine) PairControl {
  std::atomic<uint64_t> sent;              // chunks written by the sender
  std::atomic<uint64_t> acked;             // chunks consumed by the receiver
  std::atomic<uint64_t> message_bytes[2];  // per half: the size of the message a chunk starts
};

}  // namespace

struct ShmCommunicator::Segment {
  void* base = nullptr;
  size_t bytes = 0;
  int n = 0;
  size_t slot_bytes = 0, mailbox_bytes = 0;
  Header* header = nullptr;
  RankControl* ranks = nullptr;
  PairControl* pairs = nullptr;
  char* slots = nullptr;
  char* mailboxes = nullptr;

  void layout(int size, size_t slot, size_t mailbox) {
    n = size;
    slot_bytes = round_up(slot, kLine);
    mailbox_bytes = round_up(mailbox, kLine);
    const size_t ranks_off = round_up(sizeof(Header), 4096);
    const size_t pairs_off = ranks_off + sizeof(RankControl) * size_t(n);
    const size_t slots_off = round_up(pairs_off + sizeof(PairControl) * size_t(n * n), 4096);
    const size_t mail_off = slots_off + slot_bytes * 2 * size_t(n);
    bytes = mail_off + mailbox_bytes * 2 * size_t(n * n);
    if (base) {
      char* b = static_cast<char*>(base);
      header = reinterpret_cast<Header*>(b);
      ranks = reinterpret_cast<RankControl*>(b + ranks_off);
      pairs = reinterpret_cast<PairControl*>(b + pairs_off);
      slots = b + slots_off;
      mailboxes = b + mail_off;
    }
  }
  char* slot(int rank, uint64_t parity) const { return slots + (size_t(rank) * 2 + parity) * slot_bytes; }
  PairControl& pair(int src, int dst) const { return pairs[src * n + dst]; }
  char* mailbox(int src, int dst, uint64_t half) const {
    return mailboxes + ((size_t(src) * size_t(n) + size_t(dst)) * 2 + half) * mailbox_bytes;
  }
  ~Segment() {
    if (base) munmap(base, bytes);
  }
};

ShmCommunicator::ShmCommunicator(ShmOptions options)
    : DeviceCommunicator(options.info), options_(std::move(options)), segment_(std::make_unique<Segment>()) {
  const std::string& name = options_.segment;
  if (name.empty() || name.find('/') != std::string::npos)
    fail("shm group '{}': segment name '{}' must be non-empty and contain no '/'", group(), name);
  if (options_.slot_bytes < 4096 || options_.mailbox_bytes < 4096)
    fail("shm group '{}': slot ({}) and mailbox ({}) sizes must be at least 4096 bytes", group(), options_.slot_bytes,
         options_.mailbox_bytes);
  std::string path = "/" + name;
  Segment& seg = *segment_;
  seg.layout(size(), options_.slot_bytes, options_.mailbox_bytes);
  Deadline deadline(timeout());
  int fd = -1;
  if (rank() == 0) {
    shm_unlink(path.c_str());  // a stale segment of a crashed run with the same name
    fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) fail("shm group '{}': cannot create segment {}: {}", group(), path, std::strerror(errno));
    if (ftruncate(fd, off_t(seg.bytes)) != 0) {
      int err = errno;
      close(fd);
      fail("shm group '{}': cannot size segment {} to {} bytes: {}", group(), path, seg.bytes, std::strerror(err));
    }
  } else {
    // Wait for rank 0 to create and size the segment.
    auto opened = [&] {
      fd = shm_open(path.c_str(), O_RDWR, 0600);
      if (fd < 0) return false;
      struct stat st {};
      // Rank 0 creates the segment as this user with mode 0600: anything else was planted by someone else.
      if (fstat(fd, &st) == 0 && (st.st_uid != geteuid() || (st.st_mode & 077) != 0)) {
        close(fd);
        fail("shm group '{}': segment {} belongs to uid {} with mode {:o}: refusing to attach (this user is {})",
             group(), path, st.st_uid, st.st_mode & 0777, geteuid());
      }
      if (fstat(fd, &st) == 0 && size_t(st.st_size) == seg.bytes) return true;
      close(fd);
      fd = -1;
      return false;
    };
    if (!wait_until(opened, deadline, [] {}))
      fail("shm group '{}': rank {} waited {} ms for rank 0 to create segment {} ({} bytes)", group(), rank(),
           timeout().count(), path, seg.bytes);
  }
  seg.base = mmap(nullptr, seg.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (seg.base == MAP_FAILED) {
    seg.base = nullptr;
    fail("shm group '{}': cannot map segment {}: {}", group(), path, std::strerror(errno));
  }
  seg.layout(size(), options_.slot_bytes, options_.mailbox_bytes);
  if (rank() == 0) {
    // ftruncate zero-filled the segment; zero is a valid initial state for every atomic.
    seg.header->size = uint32_t(size());
    seg.header->slot_bytes = seg.slot_bytes;
    seg.header->mailbox_bytes = seg.mailbox_bytes;
    seg.header->magic.store(kMagic, std::memory_order_release);
  } else if (!wait_until([&] { return seg.header->magic.load(std::memory_order_acquire) == kMagic; }, deadline,
                         [] {})) {
    fail("shm group '{}': segment {} was never initialised by rank 0", group(), path);
  }
  if (seg.header->size != uint32_t(size()) || seg.header->slot_bytes != seg.slot_bytes)
    fail("shm group '{}': segment {} was made for {} ranks with {}-byte slots, this rank expects {} and {}", group(),
         path, seg.header->size, seg.header->slot_bytes, size(), seg.slot_bytes);
  seg.ranks[rank()].pid.store(int32_t(getpid()), std::memory_order_relaxed);
  seg.header->attached.fetch_add(1, std::memory_order_acq_rel);
  auto all_attached = [&] { return seg.header->attached.load(std::memory_order_acquire) >= uint32_t(size()); };
  if (!wait_until(all_attached, deadline, [] {})) {
    std::string missing;
    for (int j = 0; j < size(); ++j)
      if (seg.ranks[j].pid.load() == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(j);
    if (rank() == 0) shm_unlink(path.c_str());
    fail("shm group '{}': rank(s) {} did not attach to segment {} within {} ms (expected {} ranks)", group(), missing,
         path, timeout().count(), size());
  }
  if (rank() == 0) shm_unlink(path.c_str());  // every rank holds a mapping; the name is no longer needed
  // Oversubscribed (more ranks than cores): spinning only delays the rank being waited for.
  if (unsigned(size()) > std::thread::hardware_concurrency()) spins_ = 64;
}

ShmCommunicator::~ShmCommunicator() { stop_async_worker(); }

void ShmCommunicator::check_usable(const char* op) const {
  if (!broken_.empty()) fail("shm group '{}' {}: unusable after an earlier failure ({})", group(), op, broken_);
}

void ShmCommunicator::check_alive(const char* op, int peer) {
  int pid = segment_->ranks[peer].pid.load(std::memory_order_relaxed);
  if (pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
    broken_ = fmt::format("rank {} (pid {}) exited", peer, pid);
    fail("shm group '{}' {}: rank {} (pid {}) exited; rank {} cannot complete the op", group(), op, peer, pid, rank());
  }
}

void ShmCommunicator::fail_wait(const char* op, int missing, const char* what) {
  broken_ = fmt::format("rank {} timed out in {}", missing, op);
  fail("shm group '{}' {}: rank {} {} within {} ms (rank {} of {} waiting)", group(), op, missing, what,
       timeout().count(), rank(), size());
}

char* ShmCommunicator::my_slot() const { return segment_->slot(rank(), steps_ % 2); }

const char* ShmCommunicator::slot(int r) const { return segment_->slot(r, steps_ % 2); }

void ShmCommunicator::step(const char* op, bool more) {
  Segment& seg = *segment_;
  uint64_t parity = steps_ % 2;
  uint64_t target = steps_ + 1;
  seg.ranks[rank()].more[parity].store(more ? 1 : 0, std::memory_order_relaxed);
  seg.ranks[rank()].arrived.store(target, std::memory_order_release);
  Deadline deadline(timeout());
  for (int j = 0; j < size(); ++j) {
    if (j == rank()) continue;
    auto& arrived = seg.ranks[j].arrived;
    if (!wait_until([&] { return arrived.load(std::memory_order_acquire) >= target; }, deadline,
                    [&] { check_alive(op, j); }, spins_))
      fail_wait(op, j, "did not arrive");
  }
  // The reads of this step's slots happen in the caller, before the next step() publishes.
}

bool ShmCommunicator::any_more() const {
  uint64_t parity = steps_ % 2;
  for (int j = 0; j < size(); ++j)
    if (segment_->ranks[j].more[parity].load(std::memory_order_relaxed)) return true;
  return false;
}

void ShmCommunicator::do_all_reduce(Tensor& tensor, ReduceOp op) {
  check_usable("all_reduce");
  size_t elem = dtype_size(tensor.dtype());
  int64_t chunk = int64_t(segment_->slot_bytes / elem);
  char* data = static_cast<char*>(tensor.raw());
  const int n = size();
  std::vector<const void*> srcs(static_cast<size_t>(n));
  for (int64_t off = 0; off < tensor.numel(); off += chunk) {
    int64_t len = std::min(chunk, tensor.numel() - off);
    char* out = data + off * int64_t(elem);
    std::memcpy(my_slot(), out, size_t(len) * elem);
    step("all_reduce");
    if (n <= 2 || size_t(len) * elem < options_.split_reduce_min_bytes) {
      // Small: every rank reduces the whole chunk (one step, latency-bound).
      for (int j = 0; j < n; ++j) srcs[size_t(j)] = slot(j);
      reduce_many(out, srcs.data(), n, len, tensor.dtype(), op);
      ++steps_;
      continue;
    }
    // Large: rank r reduces only segment r, into its slot of the next step's parity (free: every
    // rank finished reading it before arriving at this step); a second step publishes the
    // segments. Each rank reads n * len / n + len instead of n * len elements.
    auto seg = [&](int j) { return len * j / n; };
    int64_t mine = seg(rank()), mine_len = seg(rank() + 1) - mine;
    for (int j = 0; j < n; ++j) srcs[size_t(j)] = slot(j) + size_t(mine) * elem;
    char* result = segment_->slot(rank(), (steps_ + 1) % 2);
    reduce_many(result, srcs.data(), n, mine_len, tensor.dtype(), op);
    ++steps_;
    step("all_reduce");
    for (int j = 0; j < n; ++j) std::memcpy(out + size_t(seg(j)) * elem, slot(j), size_t(seg(j + 1) - seg(j)) * elem);
    ++steps_;
  }
}

void ShmCommunicator::do_all_gather(const Tensor& input, Tensor& output) {
  check_usable("all_gather");
  size_t total = input.nbytes();
  const char* in = static_cast<const char*>(input.raw());
  char* out = static_cast<char*>(output.raw());
  for (size_t off = 0; off < total; off += segment_->slot_bytes) {
    size_t len = std::min(segment_->slot_bytes, total - off);
    std::memcpy(my_slot(), in + off, len);
    step("all_gather");
    for (int j = 0; j < size(); ++j) std::memcpy(out + size_t(j) * total + off, slot(j), len);
    ++steps_;
  }
}

void ShmCommunicator::do_reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  check_usable("reduce_scatter");
  size_t elem = dtype_size(input.dtype());
  int64_t m = output.numel();
  int64_t chunk = int64_t(segment_->slot_bytes / elem / size_t(size()));
  const char* in = static_cast<const char*>(input.raw());
  char* out = static_cast<char*>(output.raw());
  std::vector<const void*> srcs(static_cast<size_t>(size()));
  for (int64_t off = 0; off < m; off += chunk) {
    int64_t len = std::min(chunk, m - off);
    size_t piece = size_t(len) * elem;
    // My slot holds, for each destination rank j, my part [off, off+len) of block j.
    for (int j = 0; j < size(); ++j) std::memcpy(my_slot() + size_t(j) * piece, in + size_t(j * m + off) * elem, piece);
    step("reduce_scatter");
    for (int j = 0; j < size(); ++j) srcs[size_t(j)] = slot(j) + size_t(rank()) * piece;
    reduce_many(out + size_t(off) * elem, srcs.data(), size(), len, input.dtype(), op);
    ++steps_;
  }
}

void ShmCommunicator::do_broadcast(Tensor& tensor, int root) {
  check_usable("broadcast");
  size_t total = tensor.nbytes();
  char* data = static_cast<char*>(tensor.raw());
  for (size_t off = 0; off < total; off += segment_->slot_bytes) {
    size_t len = std::min(segment_->slot_bytes, total - off);
    if (rank() == root) std::memcpy(my_slot(), data + off, len);
    step("broadcast");
    if (rank() != root) std::memcpy(data + off, slot(root), len);
    ++steps_;
  }
}

void ShmCommunicator::do_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                                    const std::vector<int64_t>& recv_rows) {
  check_usable("all_to_all");
  int n = size();
  size_t row_bytes = input.size(0) ? input.nbytes() / size_t(input.size(0))
                                   : (output.size(0) ? output.nbytes() / size_t(output.size(0)) : 0);
  // Each slot is cut into one box per destination; rounds continue while any rank has data left,
  // which every rank learns from the `more` flags, so the round count needs no extra agreement.
  size_t box = segment_->slot_bytes / size_t(n) / kLine * kLine;
  std::vector<size_t> send_off(static_cast<size_t>(n)), send_left(send_off), recv_off(send_off), recv_left(send_off);
  for (int j = 0; j < n; ++j) {
    send_left[size_t(j)] = size_t(send_rows[size_t(j)]) * row_bytes;
    recv_left[size_t(j)] = size_t(recv_rows[size_t(j)]) * row_bytes;
  }
  std::exclusive_scan(send_left.begin(), send_left.end(), send_off.begin(), size_t(0));
  std::exclusive_scan(recv_left.begin(), recv_left.end(), recv_off.begin(), size_t(0));
  const char* in = static_cast<const char*>(input.raw());
  char* out = static_cast<char*>(output.raw());
  for (;;) {
    bool more = false;
    for (int j = 0; j < n; ++j) {
      size_t len = std::min(box, send_left[size_t(j)]);
      std::memcpy(my_slot() + size_t(j) * box, in + send_off[size_t(j)], len);
      send_off[size_t(j)] += len;
      send_left[size_t(j)] -= len;
      more = more || send_left[size_t(j)] > 0;
    }
    step("all_to_all", more);
    for (int j = 0; j < n; ++j) {
      size_t len = std::min(box, recv_left[size_t(j)]);
      std::memcpy(out + recv_off[size_t(j)], slot(j) + size_t(rank()) * box, len);
      recv_off[size_t(j)] += len;
      recv_left[size_t(j)] -= len;
    }
    bool again = any_more();
    ++steps_;
    if (!again) break;
  }
  for (int j = 0; j < n; ++j)
    if (recv_left[size_t(j)])
      fail("shm group '{}' all_to_all: rank {} sent fewer bytes than the {} rank {} expected from it", group(), j,
           recv_rows[size_t(j)], rank());
}

void ShmCommunicator::do_barrier() {
  check_usable("barrier");
  step("barrier");
  ++steps_;
}

void ShmCommunicator::do_send(const Tensor& tensor, int dst) {
  check_usable("send");
  Segment& seg = *segment_;
  PairControl& pc = seg.pair(rank(), dst);
  const char* data = static_cast<const char*>(tensor.raw());
  size_t total = tensor.nbytes();
  uint64_t sent = pc.sent.load(std::memory_order_relaxed);
  size_t off = 0;
  do {
    // At most two chunks in flight: wait until the receiver freed the half we are about to fill.
    Deadline deadline(timeout());
    if (!wait_until([&] { return sent - pc.acked.load(std::memory_order_acquire) < 2; }, deadline,
                    [&] { check_alive("send", dst); }, spins_))
      fail_wait("send", dst, "did not receive");
    size_t len = std::min(seg.mailbox_bytes, total - off);
    std::memcpy(seg.mailbox(rank(), dst, sent % 2), data + off, len);
    if (off == 0) pc.message_bytes[sent % 2].store(total, std::memory_order_relaxed);
    pc.sent.store(++sent, std::memory_order_release);
    off += len;
  } while (off < total);
}

void ShmCommunicator::do_recv(Tensor& tensor, int src) {
  check_usable("recv");
  Segment& seg = *segment_;
  PairControl& pc = seg.pair(src, rank());
  char* data = static_cast<char*>(tensor.raw());
  size_t total = tensor.nbytes();
  uint64_t acked = pc.acked.load(std::memory_order_relaxed);
  size_t off = 0;
  do {
    Deadline deadline(timeout());
    if (!wait_until([&] { return pc.sent.load(std::memory_order_acquire) > acked; }, deadline,
                    [&] { check_alive("recv", src); }, spins_))
      fail_wait("recv", src, "did not send");
    uint64_t announced = pc.message_bytes[acked % 2].load(std::memory_order_relaxed);
    if (off == 0 && announced != total) {
      broken_ = "send/recv size mismatch";
      fail("shm group '{}' recv: rank {} sent {} bytes, rank {} expected {} ({})", group(), src, announced, rank(),
           total, tensor.describe());
    }
    size_t len = std::min(seg.mailbox_bytes, total - off);
    std::memcpy(data + off, seg.mailbox(src, rank(), acked % 2), len);
    pc.acked.store(++acked, std::memory_order_release);
    off += len;
  } while (off < total);
}

}  // namespace troupe
