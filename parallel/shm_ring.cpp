#include "parallel/shm_ring.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "parallel/ring_collectives.h"

namespace zt {

namespace {

constexpr uint32_t kSlots = 2;  // double buffering: a sender runs at most one message ahead

// Waits on a 32-bit word another process changes (no FUTEX_PRIVATE_FLAG: the word is shared).
void futex_wait(std::atomic<uint32_t>& word, uint32_t seen, std::chrono::nanoseconds at_most) {
  timespec ts{static_cast<time_t>(at_most.count() / 1000000000), static_cast<long>(at_most.count() % 1000000000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

std::string channel_name(const std::string& token, int rank) { return fmt::format("/zt-{}-{}", token, rank); }

}  // namespace

// One receiver's channel: the sender publishes message s in slot s % kSlots and counts it in
// `written`; the receiver counts what it has copied out in `read`. Both only grow (mod 2^32).
// The slots follow the header's page.
struct ShmRingLink::Channel {
  static constexpr size_t kHeaderBytes = 4096;
  alignas(64) std::atomic<uint32_t> written;
  alignas(64) std::atomic<uint32_t> read;
  alignas(64) int64_t bytes[kSlots];

  static size_t map_bytes() {
    static_assert(sizeof(Channel) <= kHeaderBytes);
    return kHeaderBytes + kSlots * static_cast<size_t>(slot_bytes());
  }
  char* slot(uint32_t s) {
    return reinterpret_cast<char*>(this) + kHeaderBytes + (s % kSlots) * static_cast<size_t>(slot_bytes());
  }
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared-memory counters must be lock-free");

int64_t ShmRingLink::slot_bytes() { return kRingPieceBytes; }

ShmRingLink::ShmRingLink(int rank, int world, Channel* in, Channel* out, size_t map_bytes)
    : rank_(rank), world_(world), in_(in), out_(out), map_bytes_(map_bytes) {}

ShmRingLink::~ShmRingLink() {
  munmap(in_, map_bytes_);
  munmap(out_, map_bytes_);
}

std::unique_ptr<ShmRingLink> ShmRingLink::connect(StoreClient& store, const std::string& prefix, int rank, int world,
                                                  std::string* why_not) {
  const std::string key = prefix + "/shm/";
  if (rank == 0) {
    std::random_device rd;
    const std::string token = fmt::format("{:08x}{:08x}", rd(), rd());
    store.set(key + "token", Bytes(token.begin(), token.end()));
  }
  const Bytes t = store.get(key + "token");
  const std::string token(t.begin(), t.end());
  const size_t bytes = Channel::map_bytes();

  // Our channel, with every page reserved now: a full /dev/shm then fails here, by name,
  // rather than with SIGBUS at the first write of a later step.
  std::string failure;
  Channel* in = nullptr;
  const std::string own = channel_name(token, rank);
  const int fd = shm_open(own.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  // The name goes when connect returns or throws, whatever happened: by then the predecessor
  // has mapped the channel, or nobody will.
  struct Unlink {
    const std::string* name;
    ~Unlink() {
      if (name) shm_unlink(name->c_str());
    }
  } unlink_own{fd >= 0 ? &own : nullptr};
  if (fd < 0) {
    failure = fmt::format("shm_open {}: {}", own, std::strerror(errno));
  } else {
    if (const int e = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); e != 0) {
      failure = fmt::format("/dev/shm has no room for {} MiB ({})", bytes >> 20, std::strerror(e));
    } else {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED)
        failure = fmt::format("mmap {}: {}", own, std::strerror(errno));
      else
        in = new (p) Channel{};  // zero counters: nobody else maps it before our ready key
    }
    close(fd);
  }
  store.set(key + "ready/" + std::to_string(rank), failure.empty() ? Bytes{'1'} : Bytes(failure.begin(), failure.end()));
  for (int r = 0; r < world; ++r) {
    const Bytes v = store.get(key + "ready/" + std::to_string(r));
    if (v != Bytes{'1'} && failure.empty()) failure = fmt::format("rank {}: {}", r, std::string(v.begin(), v.end()));
  }
  if (!failure.empty()) {  // every rank saw the same keys: all fall back together
    if (in) munmap(in, bytes);
    *why_not = failure;
    return nullptr;
  }

  const int next = (rank + 1) % world, prev = (rank + world - 1) % world;
  const std::string theirs = channel_name(token, next);
  const int nfd = shm_open(theirs.c_str(), O_RDWR, 0600);
  void* out = nfd < 0 ? MAP_FAILED : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, nfd, 0);
  const int open_errno = errno;
  if (nfd >= 0) close(nfd);
  store.set(key + "opened/" + std::to_string(rank), Bytes{'1'});
  store.get(key + "opened/" + std::to_string(prev));  // our predecessor holds our channel now
  if (out == MAP_FAILED) {
    munmap(in, bytes);
    fail("gloo: rank {} could not map rank {}'s shared-memory channel {}: {}", rank, next, theirs,
         std::strerror(open_errno));
  }
  return std::unique_ptr<ShmRingLink>(new ShmRingLink(rank, world, in, static_cast<Channel*>(out), bytes));
}

namespace {

// Returns once done() holds, spinning briefly and then sleeping on `word`'s futex; throws
// ShmTimeout with `what` past the deadline.
template <class Done>
void wait_for(std::atomic<uint32_t>& word, Done done, ShmRingLink::Clock::time_point deadline, const char* what,
              int peer) {
  for (int spin = 0; spin < 4000; ++spin) {
    if (done(word.load(std::memory_order_acquire))) return;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  for (;;) {
    const uint32_t seen = word.load(std::memory_order_acquire);
    if (done(seen)) return;
    const auto now = ShmRingLink::Clock::now();
    if (now >= deadline) throw ShmTimeout(fmt::format("Timed out {} rank {}", what, peer));
    futex_wait(word, seen, std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(50)));
  }
}

}  // namespace

void ShmRingLink::sendrecv(const void* send, int64_t bytes, Clock::time_point deadline,
                           const std::function<void(const void* received)>& consume) {
  ZT_CHECK(bytes >= 0 && bytes <= slot_bytes(), "shared-memory message of {} bytes (at most {})", bytes, slot_bytes());
  const int next = (rank_ + 1) % world_, prev = (rank_ + world_ - 1) % world_;
  // Send first: our successor frees slot s % kSlots when it reads message s - kSlots, which
  // it did in its own previous-but-one call, so no rank waits here on one that waits on it.
  const uint32_t s = sent_++;
  wait_for(out_->read, [&](uint32_t read) { return s - read < kSlots; }, deadline, "sending to", next);
  std::memcpy(out_->slot(s), send, static_cast<size_t>(bytes));
  out_->bytes[s % kSlots] = bytes;
  out_->written.store(s + 1, std::memory_order_release);
  futex_wake(out_->written);

  const uint32_t r = received_++;
  wait_for(in_->written, [&](uint32_t written) { return written - r - 1 < kSlots; }, deadline, "receiving from",
           prev);
  ZT_CHECK(in_->bytes[r % kSlots] == bytes, "rank {} sent {} bytes, rank {} expected {}", prev, in_->bytes[r % kSlots],
           rank_, bytes);
  consume(in_->slot(r));
  in_->read.store(r + 1, std::memory_order_release);
  futex_wake(in_->read);
}

}  // namespace zt
