// Element types. fp32 is the CPU reference; fp64 exists for gradient checks;
// bf16 is the GPU storage type; integer types carry token ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace baton {

enum class DType : uint8_t { kF32, kF64, kBF16, kI32, kU16 };

inline size_t SizeOf(DType t) {
  switch (t) {
    case DType::kF64: return 8;
    case DType::kF32: case DType::kI32: return 4;
    case DType::kBF16: case DType::kU16: return 2;
  }
  return 0;
}

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kU16: return "u16";
  }
  return "?";
}

// bf16 is the top half of an fp32; host conversions for tests, checkpoints and
// the CPU side of conversions. To bf16 rounds to nearest even (NaN stays NaN).
inline float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

template <typename T> constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<double>() { return DType::kF64; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<uint16_t>() { return DType::kU16; }

}  // namespace baton
