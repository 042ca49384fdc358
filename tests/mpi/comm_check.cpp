// Runs every collective of a communicator against values each rank can compute for every
// other rank, at the world size the launcher gives it. Exits non-zero on any mismatch.
//   mpirun -np N build/zt_comm_check            (MPI)
//   zt launch --nproc-per-node N -- build/zt_comm_check   (Gloo)
//   mpirun -np N build/zt_comm_check staged               (either, through staging buffers)
//   zt launch --nproc-per-node 2 -- build/zt_comm_check stuck_peer   (a reduce_scatter that
//       rank 1 never joins: rank 0 must fail it within 2 s, naming rank 1)
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime.h"
#include "parallel/comm_gloo.h"
#include "parallel/comm_mpi.h"
#include "parallel/comm_staged.h"

using namespace zt;

namespace {

int failures = 0;

void expect(bool ok, const char* what, int rank, int64_t n, int64_t i, double got, double want) {
  if (!ok && failures++ < 10)
    std::fprintf(stderr, "rank %d: %s (n=%lld) element %lld: got %.9g want %.9g\n", rank, what,
                 static_cast<long long>(n), static_cast<long long>(i), got, want);
}

float value(int r, int64_t i) { return static_cast<float>(0.5 * (r + 1) + 0.001 * static_cast<double>(i % 1000)); }

Tensor filled(int r, int64_t n) {
  Tensor t = Tensor::empty({n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = value(r, i);
  return t;
}

// reduce_scatter: chunk `rank` of the reduction of every rank's (W n) buffer, by each op,
// out of place and in place (the output is the input's own chunk).
void check_reduce_scatter(Communicator& comm, int64_t n, std::initializer_list<ReduceOp> ops) {
  const int W = comm.world_size(), rank = comm.rank();
  for (ReduceOp op : ops) {
    for (bool in_place : {false, true}) {
      Tensor in = filled(rank, W * n);
      Tensor out = in_place ? in.view(rank * n, {n}) : Tensor::empty({n}, DType::f32);
      comm.reduce_scatter(out, in, op)->wait();
      const char* what = in_place ? "reduce_scatter in place" : "reduce_scatter";
      for (int64_t i = 0; i < n; ++i) {
        double want = op == ReduceOp::max ? value(W - 1, rank * n + i) : 0;
        if (op != ReduceOp::max) {
          for (int r = 0; r < W; ++r) want += value(r, rank * n + i);
          if (op == ReduceOp::avg) want /= W;
        }
        expect(std::fabs(out.data<float>()[i] - want) <= 1e-5 * want, what, rank, n, i, out.data<float>()[i], want);
      }
    }
  }
}

}  // namespace

// Rank 1 stays away (then exits) while rank 0 reduce-scatters with a 2 s timeout.
int stuck_peer() {
  auto comm = make_gloo_comm(discover_rank(), std::chrono::milliseconds(2000));
  if (comm->rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(9));
    return 0;
  }
  Tensor in = filled(0, 2 * 1000), out = Tensor::empty({1000}, DType::f32);
  try {
    comm->reduce_scatter(out, in)->wait();
  } catch (const std::exception& e) {
    std::printf("reduce_scatter failed: %s\n", e.what());
    return 0;
  }
  std::printf("reduce_scatter completed without rank 1\n");
  return 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "stuck_peer") return stuck_peer();
  // mpirun gives the MPI backend; zt launch (RANK, WORLD_SIZE, MASTER_*) the Gloo backend.
  auto comm = launched_by_mpi() ? make_mpi_comm() : make_gloo_comm(discover_rank());
  // `staged`: the same checks through parallel.backend: staged's copies into staging buffers
  // (host tensors staged too, so no GPU is needed).
  if (argc > 1 && std::string(argv[1]) == "staged") comm = make_staged_comm(std::move(comm), {.stage_host_tensors = true});
  const int W = comm->world_size(), rank = comm->rank();
  for (int64_t n : {1, 7, 1000, 4099}) {  // sizes that do and do not divide by W
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg, ReduceOp::max}) {
      Tensor t = filled(rank, n);
      comm->all_reduce(t, op)->wait();
      for (int64_t i = 0; i < n; ++i) {
        double want = op == ReduceOp::max ? value(W - 1, i) : 0;
        if (op != ReduceOp::max) {
          for (int r = 0; r < W; ++r) want += value(r, i);
          if (op == ReduceOp::avg) want /= W;
        }
        expect(std::fabs(t.data<float>()[i] - want) <= 1e-5 * std::fabs(want), "all_reduce", rank, n, i, t.data<float>()[i], want);
      }
    }
    check_reduce_scatter(*comm, n, {ReduceOp::sum, ReduceOp::avg, ReduceOp::max});
    // all_gather, out of place and in place.
    for (bool in_place : {false, true}) {
      Tensor gathered = Tensor::zeros({W * n}, DType::f32);
      Tensor mine = in_place ? gathered.view(rank * n, {n}) : filled(rank, n);
      if (in_place) mine.copy_from(filled(rank, n));
      comm->all_gather(gathered, mine)->wait();
      for (int r = 0; r < W; ++r)
        for (int64_t i = 0; i < n; ++i)
          expect(gathered.data<float>()[r * n + i] == value(r, i), in_place ? "all_gather in place" : "all_gather", rank, n,
                 r * n + i, gathered.data<float>()[r * n + i], value(r, i));
    }
    Tensor b = filled(rank, n);
    comm->broadcast(b, W - 1)->wait();
    for (int64_t i = 0; i < n; ++i) expect(b.data<float>()[i] == value(W - 1, i), "broadcast", rank, n, i, b.data<float>()[i], value(W - 1, i));
  }
  // A buffer that the MPI and Gloo rings send in two pieces (4 MiB, then 20 bytes).
  check_reduce_scatter(*comm, (1 << 20) + 5, {ReduceOp::sum});
  // An all-reduce whose chunks pass one piece (Gloo's ring on one host), with a tail W does
  // not divide: every 997th element and the last W.
  {
    const int64_t n = (int64_t{1} << 20) * W + W - 1;
    Tensor t = filled(rank, n);
    comm->all_reduce(t)->wait();
    auto check = [&](int64_t i) {
      double want = 0;
      for (int r = 0; r < W; ++r) want += value(r, i);
      expect(std::fabs(t.data<float>()[i] - want) <= 1e-5 * std::fabs(want), "large all_reduce", rank, n, i,
             t.data<float>()[i], want);
    };
    for (int64_t i = 0; i < n; i += 997) check(i);
    for (int64_t i = n - W; i < n; ++i) check(i);
  }
  // bf16 sums (precision.reduce: bf16): values with few significant bits, so every partial
  // sum is exact in bf16 whatever order a backend adds in, and the result must be exact.
  auto bf16_value = [](int r, int64_t i) { return 0.25f * static_cast<float>(r + 1) + static_cast<float>(i % 16); };
  for (int64_t n : {1, 7, 1000, 4099}) {
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {
      Tensor t = Tensor::empty({n}, DType::bf16);
      for (int64_t i = 0; i < n; ++i) t.data<uint16_t>()[i] = f32_to_bf16(bf16_value(rank, i));
      comm->all_reduce(t, op)->wait();
      for (int64_t i = 0; i < n; ++i) {
        double want = 0;
        for (int r = 0; r < W; ++r) want += bf16_value(r, i);
        if (op == ReduceOp::avg) want = bf16_to_f32(f32_to_bf16(static_cast<float>(want / W)));
        const double got = bf16_to_f32(t.data<uint16_t>()[i]);
        expect(got == want, op == ReduceOp::avg ? "bf16 all_reduce avg" : "bf16 all_reduce", rank, n, i, got, want);
      }
    }
    Tensor in = Tensor::empty({W * n}, DType::bf16), out = Tensor::empty({n}, DType::bf16);
    for (int64_t i = 0; i < W * n; ++i) in.data<uint16_t>()[i] = f32_to_bf16(bf16_value(rank, i));
    comm->reduce_scatter(out, in)->wait();
    for (int64_t i = 0; i < n; ++i) {
      double want = 0;
      for (int r = 0; r < W; ++r) want += bf16_value(r, rank * n + i);
      const double got = bf16_to_f32(out.data<uint16_t>()[i]);
      expect(got == want, "bf16 reduce_scatter", rank, n, i, got, want);
    }
  }
  // Several ops in flight at once complete in order with the right results.
  std::vector<Tensor> bufs;
  std::vector<WorkPtr> works;
  for (int k = 0; k < 8; ++k) {
    bufs.push_back(filled(rank, 513 + k));
    works.push_back(comm->all_reduce(bufs.back()));
  }
  for (int k = 7; k >= 0; --k) works[k]->wait();
  for (int k = 0; k < 8; ++k) {
    double want = 0;
    for (int r = 0; r < W; ++r) want += value(r, 5);
    expect(std::fabs(bufs[k].data<float>()[5] - want) <= 1e-5 * want, "async all_reduce", rank, 513 + k, 5, bufs[k].data<float>()[5], want);
  }
  comm->barrier()->wait();
  // Byte counters follow the ring formulas.
  comm->reset_stats();
  Tensor x = filled(rank, 1024 * W);
  comm->all_reduce(x)->wait();
  const int64_t want_bytes = ring_bytes_sent(CommOp::all_reduce, x.nbytes(), W);
  const int64_t got_bytes = comm->stats().bytes_sent[static_cast<int>(CommOp::all_reduce)];
  expect(got_bytes == want_bytes, "all_reduce byte count", rank, x.numel(), 0, static_cast<double>(got_bytes), static_cast<double>(want_bytes));
  if (failures == 0) std::printf("comm check passed: rank %d of %d\n", rank, W);
  return failures == 0 ? 0 : 1;
}
