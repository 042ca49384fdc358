// The shared-memory ring link (parallel/shm_ring.h) between threads of one process acting as
// ranks: our ring reduce-scatter, all-gather and all-reduce over it, messages past one slot,
// a neighbour that never comes failing within the deadline, and nothing left in /dev/shm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/statvfs.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "core/tensor.h"
#include "parallel/ring_collectives.h"
#include "parallel/shm_ring.h"
#include "parallel/store.h"

namespace zt {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Free bytes in /dev/shm (0 without one): three channels take 24 MiB.
int64_t dev_shm_free() {
  struct statvfs st {};
  if (statvfs("/dev/shm", &st) != 0) return 0;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}
constexpr int64_t kRoom = int64_t{64} << 20;  // with room to spare beside tests running in parallel

// Runs fn(rank, link) on `world` threads, each connected through its own store client.
void on_ranks(int world, const std::function<void(int, ShmRingLink&)>& fn) {
  StoreServer server("127.0.0.1", 0);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        StoreClient store("127.0.0.1", server.port(), 10000ms);
        std::string why;
        auto link = ShmRingLink::connect(store, "test", r, world, &why);
        if (!link) throw std::runtime_error("no link: " + why);
        fn(r, *link);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

SendRecv over(ShmRingLink& link) {
  return [&link](const void* send, int, int, int64_t bytes, void*, const Consume& consume) {
    link.sendrecv(send, bytes, ShmRingLink::Clock::now() + 10s, consume);
  };
}

size_t channels_in_dev_shm() {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    n += name.starts_with("zt-") && !name.starts_with("zt-fuzz-");
  }
  return n;
}

// Each chunk spans two slots and a part of a third, so that pieces wrap the double buffer;
// the all-reduce's tail is a second, one-element-per-rank round.
TEST(ShmRing, RingReduceScatterAllGatherAndAllReduceGiveEveryRanksSumsAndChunks) {
  if (dev_shm_free() < kRoom) GTEST_SKIP() << "/dev/shm has " << (dev_shm_free() >> 20) << " MiB free";
  const size_t before = channels_in_dev_shm();
  for (int world : {2, 3}) {
    const int64_t n = 2 * ShmRingLink::slot_bytes() / 4 + 5;
    on_ranks(world, [&](int rank, ShmRingLink& link) {
      Tensor input = Tensor::empty({world * n}, DType::f32), out = Tensor::empty({n}, DType::f32);
      for (int64_t i = 0; i < world * n; ++i) input.data<float>()[i] = static_cast<float>((rank + 1) * (i % 1000));
      ring_reduce_scatter(out, input, ReduceOp::sum, rank, world, over(link));
      const float ranks = world * (world + 1) / 2.0f;
      for (int64_t i = 0; i < n; ++i)
        if (out.data<float>()[i] != ranks * static_cast<float>((rank * n + i) % 1000))
          throw std::runtime_error("reduce_scatter element " + std::to_string(i));
      Tensor gathered = Tensor::empty({world * n}, DType::f32);
      Tensor own = gathered.slice(rank * n, (rank + 1) * n);
      for (int64_t i = 0; i < n; ++i) own.data<float>()[i] = static_cast<float>(rank * 7 + i % 13);
      ring_all_gather(gathered, own, rank, world, over(link));  // in place: its own chunk
      for (int r = 0; r < world; ++r)
        for (int64_t i = 0; i < n; ++i)
          if (gathered.data<float>()[r * n + i] != static_cast<float>(r * 7 + i % 13))
            throw std::runtime_error("all_gather chunk " + std::to_string(r));
      // All-reduce: W chunks past one slot and a tail of world - 1 elements; max, then sum.
      Tensor all = Tensor::empty({world * n + world - 1}, DType::f32);
      for (int64_t i = 0; i < all.numel(); ++i) all.data<float>()[i] = static_cast<float>(((rank + i) % world) * (i % 100));
      ring_all_reduce(all, ReduceOp::max, rank, world, over(link));
      for (int64_t i = 0; i < all.numel(); ++i)
        if (all.data<float>()[i] != static_cast<float>((world - 1) * (i % 100)))
          throw std::runtime_error("all_reduce max element " + std::to_string(i));
      ring_all_reduce(all, ReduceOp::sum, rank, world, over(link));
      for (int64_t i = 0; i < all.numel(); ++i)
        if (all.data<float>()[i] != static_cast<float>(world * (world - 1) * (i % 100)))
          throw std::runtime_error("all_reduce sum element " + std::to_string(i));
    });
  }
  EXPECT_EQ(channels_in_dev_shm(), before);  // every name removed once mapped
}

TEST(ShmRing, ANeighbourThatNeverComesFailsWithinTheDeadlineNamingIt) {
  if (dev_shm_free() < kRoom) GTEST_SKIP() << "/dev/shm has " << (dev_shm_free() >> 20) << " MiB free";
  on_ranks(2, [](int rank, ShmRingLink& link) {
    if (rank == 1) return;  // never sends: rank 0 waits to receive from it
    std::vector<char> send(64);
    const auto t0 = ShmRingLink::Clock::now();
    try {
      link.sendrecv(send.data(), 64, t0 + 300ms, [](const void*) { throw std::runtime_error("received"); });
      throw std::runtime_error("no timeout");
    } catch (const ShmTimeout& e) {
      EXPECT_THAT(e.what(), HasSubstr("receiving from rank 1"));
    }
    EXPECT_LT(ShmRingLink::Clock::now() - t0, 5s);
  });
}

}  // namespace
}  // namespace zt
