#pragma once
// GGML's tensor element types as GGUF files store them: the plain types (F32, F16, BF16) and the
// block-quantized ones troupe reads (Q8_0, Q4_0, Q4_K, Q6_K), with the conversions between a row
// of blocks and f32 exactly as ggml defines them (ggml-quants.c's reference code):
//
//   Q8_0  32 values: f16 scale d, 32 x int8 q             x = d * q
//   Q4_0  32 values: f16 scale d, 16 bytes of nibbles      x = d * (q - 8), low nibbles first
//   Q4_K 256 values: f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles
//   Q6_K 256 values: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 x int8 scales, f16 d
//
// Quantization (f32 -> Q8_0 / Q4_0) is ggml's round-to-nearest per 32-block, so a file this code
// writes holds the same bytes llama.cpp's quantizer writes for the same f32 row.
// All functions are pure; rows are contiguous; `n` must be a multiple of the type's block size
// (checked: troupe::Error otherwise).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace troupe {

// GGML's numbering (ggml.h), which GGUF tensor infos carry.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
};

// The types troupe reads; nullopt for any other number (a file using one is refused by name).
std::optional<GgmlType> ggml_type_from_number(uint32_t number);
// "F32", "Q8_0", ...; for a number troupe does not read, ggml's name when known ("Q5_K"), else "type N".
std::string ggml_type_name(uint32_t number);
std::optional<GgmlType> parse_ggml_type(std::string_view name);  // "f32", "Q8_0", "q4_k", ...

int64_t ggml_block_values(GgmlType type);  // values per block: 1 for F32/F16/BF16, 32 or 256
int64_t ggml_block_bytes(GgmlType type);   // bytes per block
// Bytes of a row of n values; throws when n is not a multiple of the block size.
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// One row of n values of `type` at `src` -> n floats.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
// n floats -> one row of `type` (F32, F16, BF16, Q8_0, Q4_0; K-quants are read-only here).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace troupe
