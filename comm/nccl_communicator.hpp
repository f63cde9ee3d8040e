#pragma once
// NcclCommunicator: collectives between CUDA devices through NCCL. The ncclUniqueId is created by
// one rank (nccl_unique_id()) and handed to all ranks by the caller (the coordinator actor).
// Tensors must live on this rank's device (Tensor::borrow(ptr, shape, dtype, keep, Device::cuda(i))).
// Every op is enqueued on the communicator's stream and waited for with the group's timeout; a
// peer that never joins aborts the communicator and fails with the group and op named (NCCL does
// not say which rank is missing).
//
// The header compiles without CUDA; in a build without it make_nccl_communicator() and
// nccl_unique_id() throw, and nccl_available() is false.
#include <array>
#include <memory>

#include "comm/device_communicator.hpp"

namespace troupe {

// An opaque ncclUniqueId (NCCL_UNIQUE_ID_BYTES = 128), copyable through any bootstrap.
struct NcclUniqueId {
  std::array<char, 128> bytes{};
};

struct NcclOptions {
  CommGroupInfo info;
  int device = 0;  // the CUDA device this rank drives
  NcclUniqueId id;
};

bool nccl_available();    // built with CUDA and at least one device present
int cuda_device_count();  // 0 without CUDA
NcclUniqueId nccl_unique_id();
// Blocks until every rank of the group has called it with the same id (or the timeout).
std::unique_ptr<DeviceCommunicator> make_nccl_communicator(const NcclOptions& options);

}  // namespace troupe
