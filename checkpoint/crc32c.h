// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
// tensor record in a checkpoint shard. Portable slicing-by-8; no intrinsics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace baton {

// Extends `crc` (the CRC32C of some bytes A, or 0 for none) over `n` more bytes,
// giving the CRC32C of A followed by those bytes:
//   Crc32cExtend(Crc32cExtend(0, a, na), b, nb) == Crc32c(a ++ b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }
inline uint32_t Crc32c(std::string_view bytes) { return Crc32c(bytes.data(), bytes.size()); }

}  // namespace baton
