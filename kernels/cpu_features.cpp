#include "kernels/cpu_features.hpp"

#include <cstdlib>
#include <string_view>

#include "kernels/error.hpp"

namespace troupe {

const CpuFeatures& CpuFeatures::get() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    __builtin_cpu_init();
    f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512 =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    if (const char* cap = std::getenv("TROUPE_CPU"); cap && *cap) {
      std::string_view c = cap;
      if (c == "scalar")
        f = CpuFeatures{};
      else if (c == "avx2")
        f.avx512 = f.avx512_bf16 = false;
      else if (c != "avx512")
        fail("TROUPE_CPU={} (expected scalar, avx2 or avx512)", c);
    }
    return f;
  }();
  return features;
}

std::string CpuFeatures::describe() const {
  if (avx512) return avx512_bf16 ? "avx512+bf16" : "avx512";
  if (avx2_fma) return "avx2";
  return "scalar";
}

}  // namespace troupe
