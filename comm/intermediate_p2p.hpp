#pragma once
// IntermediateTensors over any communicator's send/recv (shm between local pipeline stages, or
// ucx): a length message, the header, then one message per tensor. CPU tensors; for GPU stages
// send the tensors themselves over an nccl communicator.
#include "comm/device_communicator.hpp"
#include "comm/intermediate_tensors.hpp"

namespace troupe {

void send_intermediate(DeviceCommunicator& comm, const IntermediateTensors& tensors, int dst);
// `reuse`: earlier buffers, received into when names, dtypes and shapes match.
IntermediateTensors recv_intermediate(DeviceCommunicator& comm, int src, IntermediateTensors reuse = {});

}  // namespace troupe
