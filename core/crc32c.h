// CRC-32C (Castagnoli), the checksum of checkpoint files: hardware-accelerated where the CPU
// has SSE4.2, same value everywhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace zt {

// Extends `crc` (the value of the bytes before) over [data, data + n); crc32c(x, n) of a
// whole buffer starts from 0.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
std::string crc32c_hex(uint32_t crc);  // 8 lower-case hex digits

}  // namespace zt
