#pragma once
// What the CPU can do, detected once at run time (kernels pick their vector width from this).
#include <string>

namespace troupe {

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;  // F + BW + VL
  bool avx512_bf16 = false;
  // TROUPE_CPU=scalar|avx2|avx512 caps what kernels use (for testing the fallbacks).
  static const CpuFeatures& get();
  std::string describe() const;
};

}  // namespace troupe
