// NCCL backend: runs where CUDA devices exist (scripts/gpu-check.sh), reports SKIP elsewhere.
// One thread per device (NCCL allows one rank per GPU); the shared collective checks run through
// an adapter that stages the CPU test tensors onto the device and back.
#include <doctest/doctest.h>

#include "tests/test_paths.hpp"

#include "comm/nccl_communicator.hpp"
#include "kernels/error.hpp"
#include "tests/comm/collective_checks.hpp"
#include "tests/comm/multi_rank.hpp"

#if TROUPE_HAVE_CUDA
#include <cuda_runtime.h>
#endif

using namespace troupe;
using namespace troupe::test;

#if TROUPE_HAVE_CUDA
namespace {

class DeviceStaged final : public DeviceCommunicator {
 public:
  DeviceStaged(std::unique_ptr<DeviceCommunicator> inner, int device)
      : DeviceCommunicator({inner->group(), inner->rank(), inner->size(), inner->timeout()}),
        inner_(std::move(inner)),
        device_(device) {}
  ~DeviceStaged() override { stop_async_worker(); }
  const char* backend() const override { return "nccl"; }

 protected:
  void do_all_reduce(Tensor& t, ReduceOp op) override {
    Tensor d = on_device(t);
    inner_->all_reduce(d, op);
    to_host(d, t);
  }
  void do_all_gather(const Tensor& in, Tensor& out) override {
    Tensor d_out = on_device(out);
    inner_->all_gather(on_device(in), d_out);
    to_host(d_out, out);
  }
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    Tensor d_out = on_device(out);
    inner_->reduce_scatter(on_device(in), d_out, op);
    to_host(d_out, out);
  }
  void do_broadcast(Tensor& t, int root) override {
    Tensor d = on_device(t);
    inner_->broadcast(d, root);
    to_host(d, t);
  }
  void do_all_to_all(const Tensor& in, const std::vector<int64_t>& s, Tensor& out,
                     const std::vector<int64_t>& r) override {
    Tensor d_out = on_device(out);
    inner_->all_to_all(on_device(in), s, d_out, r);
    to_host(d_out, out);
  }
  void do_send(const Tensor& t, int dst) override { inner_->send(on_device(t), dst); }
  void do_recv(Tensor& t, int src) override {
    Tensor d = on_device(t);
    inner_->recv(d, src);
    to_host(d, t);
  }
  void do_barrier() override { inner_->barrier(); }

 private:
  Tensor on_device(const Tensor& cpu) const {
    cudaSetDevice(device_);  // async ops run on the adapter's own worker thread
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(cpu.nbytes(), 16)) != cudaSuccess)
      fail("cudaMalloc of {} bytes failed", cpu.nbytes());
    cudaMemcpy(p, cpu.raw(), cpu.nbytes(), cudaMemcpyHostToDevice);
    return Tensor::borrow(p, cpu.shape(), cpu.dtype(), std::shared_ptr<void>(p, [](void* q) { cudaFree(q); }),
                          Device::cuda(device_));
  }
  static void to_host(const Tensor& dev, Tensor& cpu) {
    cudaMemcpy(cpu.raw(), dev.raw(), cpu.nbytes(), cudaMemcpyDeviceToHost);
  }

  std::unique_ptr<DeviceCommunicator> inner_;
  int device_;
};

}  // namespace
#endif

TEST_CASE("nccl collectives match a serial computation (one rank per GPU)") {
  if (!nccl_available()) {
    troupe::test::skip_case("no CUDA device, or a build without CUDA (scripts/gpu-check.sh runs it on a GPU machine)");
    return;
  }
#if TROUPE_HAVE_CUDA
  const int n = std::min(cuda_device_count(), 4);
  NcclUniqueId id = nccl_unique_id();
  std::string errors = run_rank_threads(n, [&](int r) {
    cudaSetDevice(r);
    auto nccl = make_nccl_communicator({{"tp", r, n, std::chrono::seconds(60)}, r, id});
    DeviceStaged comm(std::move(nccl), r);
    check_collectives(comm, all_test_sizes());
  });
  CHECK_MESSAGE(errors.empty(), errors);
  MESSAGE("nccl checked with " << n << " GPU rank(s)");
#endif
}

TEST_CASE("nccl rejects CPU tensors and reports a build without CUDA clearly") {
#if TROUPE_HAVE_CUDA
  if (!nccl_available()) {
    troupe::test::skip_case("no CUDA device (scripts/gpu-check.sh runs it on a GPU machine)");
    return;
  }
  auto comm = make_nccl_communicator({{"tp", 0, 1, std::chrono::seconds(30)}, 0, nccl_unique_id()});
  Tensor cpu = Tensor::zeros({4}, DType::F32);
  CHECK_THROWS_WITH_AS(comm->all_reduce(cpu), doctest::Contains("the nccl backend cannot use a tensor on cpu"), Error);
#else
  CHECK_THROWS_WITH_AS(make_nccl_communicator({{"tp", 0, 1}, 0, {}}), doctest::Contains("this build has no CUDA"),
                       Error);
  CHECK_FALSE(nccl_available());
#endif
}
