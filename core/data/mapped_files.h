// Files we read through mmap, and what a SIGBUS on them means. A mapped file that shrinks
// while mapped (truncated in place by another program) turns the next read of a vanished page
// into SIGBUS, which would kill the process with no message. The handler installed here
// looks up the faulting address: inside a registered mapping it prints one error naming the
// file and exits with code 1; anywhere else it leaves the signal to its default action.
#pragma once
#include <cstddef>
#include <string>

namespace zt {

void register_mapping(const void* begin, size_t bytes, const std::string& path);
void unregister_mapping(const void* begin);

}  // namespace zt
