#pragma once
// SiLU-and-mul for gated MLPs: out[m, i] = silu(gate_up[m, i]) * gate_up[m, I + i].
#include "kernels/tensor.hpp"

namespace troupe {

// gate_up: [M, 2I] f32 (gate columns first, then up); returns [M, I] f32.
Tensor silu_and_mul(const Tensor& gate_up);

}  // namespace troupe
