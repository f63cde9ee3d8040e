#include "comm/nccl_communicator.hpp"

#include "kernels/error.hpp"

#if TROUPE_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <iterator>

#include "comm/comm_timeout.hpp"
#endif

namespace troupe {

#if !TROUPE_HAVE_CUDA

bool nccl_available() { return false; }
int cuda_device_count() { return 0; }
NcclUniqueId nccl_unique_id() { fail("nccl: this build has no CUDA (configure with -DTROUPE_CUDA=ON)"); }
std::unique_ptr<DeviceCommunicator> make_nccl_communicator(const NcclOptions& options) {
  fail("nccl group '{}': this build has no CUDA (configure with -DTROUPE_CUDA=ON)", options.info.name);
}

#else

namespace {

static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueId::bytes), "NCCL_UNIQUE_ID_BYTES changed");

void check_cuda(cudaError_t err, const std::string& who, const char* what) {
  if (err != cudaSuccess) fail("{}: {} failed: {}", who, what, cudaGetErrorString(err));
}

ncclDataType_t nccl_type(DType dtype) {
  // Indexed by DType, in the enum's order: F32, BF16, F16, I32, I64, U8.
  constexpr ncclDataType_t kTypes[] = {ncclFloat32, ncclBfloat16, ncclFloat16, ncclInt32, ncclInt64, ncclUint8};
  return size_t(dtype) < std::size(kTypes) ? kTypes[size_t(dtype)] : ncclUint8;
}

class NcclCommunicator final : public DeviceCommunicator {
 public:
  explicit NcclCommunicator(const NcclOptions& o) : DeviceCommunicator(o.info), device_(o.device) {
    who_ = fmt::format("nccl group '{}'", group());
    check_cuda(cudaSetDevice(device_), who_, "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), who_, "cudaStreamCreate");
    check_cuda(cudaMalloc(&scratch_, 16), who_, "cudaMalloc");
    ncclUniqueId id;
    std::memcpy(&id, o.id.bytes.data(), sizeof id);
    // Non-blocking init so a rank that never joins turns into a timeout, not a hang.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm_, size(), id, rank(), &config);
    if (r != ncclSuccess && r != ncclInProgress) fail("{}: ncclCommInitRank failed: {}", who_, ncclGetErrorString(r));
    wait_comm("init");
  }

  ~NcclCommunicator() override {
    stop_async_worker();
    if (comm_) ncclCommDestroy(comm_);
    if (scratch_) cudaFree(scratch_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  const char* backend() const override { return "nccl"; }

 protected:
  bool accepts(const Tensor& t) const override { return t.device() == Device::cuda(device_); }

  void do_all_reduce(Tensor& t, ReduceOp op) override {
    enqueue("all_reduce", ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()),
                                        op == ReduceOp::Sum ? ncclSum : ncclMax, comm_, stream_));
  }
  void do_all_gather(const Tensor& in, Tensor& out) override {
    enqueue("all_gather",
            ncclAllGather(in.raw(), out.raw(), size_t(in.numel()), nccl_type(in.dtype()), comm_, stream_));
  }
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    enqueue("reduce_scatter", ncclReduceScatter(in.raw(), out.raw(), size_t(out.numel()), nccl_type(in.dtype()),
                                                op == ReduceOp::Sum ? ncclSum : ncclMax, comm_, stream_));
  }
  void do_broadcast(Tensor& t, int root) override {
    enqueue("broadcast",
            ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_, stream_));
  }
  void do_all_to_all(const Tensor& in, const std::vector<int64_t>& send_rows, Tensor& out,
                     const std::vector<int64_t>& recv_rows) override {
    size_t row = in.size(0) ? in.nbytes() / size_t(in.size(0)) : (out.size(0) ? out.nbytes() / size_t(out.size(0)) : 0);
    const char* src = static_cast<const char*>(in.raw());
    char* dst = static_cast<char*>(out.raw());
    ncclResult_t first_error = ncclGroupStart();
    auto keep = [&](ncclResult_t r) {
      if (first_error == ncclSuccess || first_error == ncclInProgress) first_error = r;
    };
    size_t s = 0, r = 0;
    for (int j = 0; j < size(); ++j) {
      size_t sb = size_t(send_rows[size_t(j)]) * row, rb = size_t(recv_rows[size_t(j)]) * row;
      if (sb) keep(ncclSend(src + s, sb, ncclUint8, j, comm_, stream_));
      if (rb) keep(ncclRecv(dst + r, rb, ncclUint8, j, comm_, stream_));
      s += sb;
      r += rb;
    }
    keep(ncclGroupEnd());
    enqueue("all_to_all", first_error);
  }
  void do_send(const Tensor& t, int dst) override {
    enqueue("send", ncclSend(t.raw(), t.nbytes(), ncclUint8, dst, comm_, stream_));
  }
  void do_recv(Tensor& t, int src) override {
    enqueue("recv", ncclRecv(t.raw(), t.nbytes(), ncclUint8, src, comm_, stream_));
  }
  void do_barrier() override {
    enqueue("barrier", ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_));
  }

 private:
  // Checks the enqueue result, then waits for the stream with the group's timeout.
  void enqueue(const char* op, ncclResult_t r) {
    if (r != ncclSuccess && r != ncclInProgress) fail("{} {}: {}", who_, op, ncclGetErrorString(r));
    wait_comm(op);
    Deadline deadline(timeout());
    bool done = wait_until([&] { return cudaStreamQuery(stream_) != cudaErrorNotReady; }, deadline,
                           [&] {
                             ncclResult_t async = ncclSuccess;
                             ncclCommGetAsyncError(comm_, &async);
                             if (async != ncclSuccess && async != ncclInProgress) {
                               ncclCommAbort(comm_);
                               comm_ = nullptr;
                               fail("{} {}: {} (a peer failed)", who_, op, ncclGetErrorString(async));
                             }
                           });
    if (!done) {
      ncclCommAbort(comm_);  // unblocks the stream; the communicator is unusable from here
      comm_ = nullptr;
      fail("{} {}: a peer rank did not take part within {} ms (rank {} of {} waiting)", who_, op, timeout().count(),
           rank(), size());
    }
    check_cuda(cudaStreamQuery(stream_), who_, op);
  }

  // Non-blocking NCCL: wait until the communicator leaves ncclInProgress.
  void wait_comm(const char* op) {
    if (!comm_) fail("{} {}: unusable after an earlier failure", who_, op);
    Deadline deadline(timeout());
    ncclResult_t state = ncclInProgress;
    bool settled = wait_until(
        [&] {
          ncclCommGetAsyncError(comm_, &state);
          return state != ncclInProgress;
        },
        deadline, [] {});
    if (!settled) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      fail("{} {}: not every rank joined within {} ms (rank {} of {} waiting)", who_, op, timeout().count(), rank(),
           size());
    }
    if (state != ncclSuccess) fail("{} {}: {}", who_, op, ncclGetErrorString(state));
  }

  std::string who_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

bool nccl_available() { return cuda_device_count() > 0; }

NcclUniqueId nccl_unique_id() {
  ncclUniqueId id;
  ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) fail("nccl: ncclGetUniqueId failed: {}", ncclGetErrorString(r));
  NcclUniqueId out;
  std::memcpy(out.bytes.data(), &id, sizeof id);
  return out;
}

std::unique_ptr<DeviceCommunicator> make_nccl_communicator(const NcclOptions& options) {
  return std::make_unique<NcclCommunicator>(options);
}

#endif

}  // namespace troupe
