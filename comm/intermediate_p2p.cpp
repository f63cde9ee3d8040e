#include "comm/intermediate_p2p.hpp"

#include "kernels/error.hpp"

namespace troupe {

void send_intermediate(DeviceCommunicator& comm, const IntermediateTensors& tensors, int dst) {
  std::string header = tensors.encode_header();
  Tensor length = Tensor::empty({1}, DType::I64);
  length.data<int64_t>()[0] = int64_t(header.size());
  comm.send(length, dst);
  comm.send(Tensor::borrow(header.data(), {int64_t(header.size())}, DType::U8, nullptr), dst);
  for (const auto& [name, t] : tensors)
    if (t.numel() > 0) comm.send(t, dst);
}

IntermediateTensors recv_intermediate(DeviceCommunicator& comm, int src, IntermediateTensors reuse) {
  Tensor length = Tensor::empty({1}, DType::I64);
  comm.recv(length, src);
  int64_t bytes = length.data<int64_t>()[0];
  if (bytes <= 0 || bytes > (16 << 20))
    fail("group '{}' recv_intermediate: rank {} announced a {}-byte header", comm.group(), src, bytes);
  std::string header(size_t(bytes), '\0');
  Tensor header_tensor = Tensor::borrow(header.data(), {bytes}, DType::U8, nullptr);
  comm.recv(header_tensor, src);
  IntermediateTensors tensors = IntermediateTensors::reuse_or_allocate(header, std::move(reuse));
  for (auto [name, view] : tensors)
    if (view.numel() > 0) comm.recv(view, src);
  return tensors;
}

}  // namespace troupe
