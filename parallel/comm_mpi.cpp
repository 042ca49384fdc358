#include "parallel/comm_mpi.h"

// The C API only: OpenMPI's deprecated C++ bindings need a library we do not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdlib>

#include "core/cpu/ops.h"
#include "core/error.h"
#include "parallel/comm_thread.h"
#include "parallel/ring_collectives.h"

namespace zt {

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::bf16:
    case DType::f16: return MPI_UINT16_T;
  }
  return MPI_BYTE;
}

// bf16 travels as MPI_UINT16_T, which MPI_SUM would add as integers: our own op sums the
// values in f32 and rounds back to bf16.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* acc = static_cast<uint16_t*>(inout);
  cpu::sum_bf16(acc, acc, static_cast<const uint16_t*>(in), *len);
}

MPI_Op bf16_sum_op() {
  static MPI_Op op = [] {
    MPI_Op o;
    MPI_Op_create(&bf16_sum, /*commute=*/1, &o);
    return o;
  }();
  return op;
}

MPI_Op mpi_op(ReduceOp op, DType t) {
  if (t == DType::bf16) return bf16_sum_op();
  return op == ReduceOp::max ? MPI_MAX : MPI_SUM;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail("MPI {} failed: {}", what, std::string(msg, len));
  }
}

void require_reducible(const Tensor& t, ReduceOp op) {
  ZT_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i32 ||
               (t.dtype() == DType::bf16 && op != ReduceOp::max),
           "MPI reductions need f32, f64 or i32 (or bf16 for sum and avg), got {}", dtype_name(t.dtype()));
}

class MpiComm : public ThreadedCommunicator {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
  }
  ~MpiComm() override { stop_thread(); }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string_view backend() const override { return "mpi"; }

  WorkPtr all_reduce(Tensor& buffer, ReduceOp op) override {
    require_reducible(buffer, op);
    return submit(CommOp::all_reduce, ring_bytes_sent(CommOp::all_reduce, buffer.nbytes(), world_), [=, this]() mutable {
      check(MPI_Allreduce(MPI_IN_PLACE, buffer.raw(), static_cast<int>(buffer.numel()), mpi_type(buffer.dtype()),
                          mpi_op(op, buffer.dtype()), MPI_COMM_WORLD), "all_reduce");
      if (op == ReduceOp::avg) divide_by_world(buffer, world_);
    });
  }

  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, ReduceOp op) override {
    require_reducible(input, op);
    ZT_CHECK(input.numel() == output.numel() * world_ && input.dtype() == output.dtype(),
             "reduce_scatter: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    // Our ring over MPI_Sendrecv: OpenMPI's MPI_Reduce_scatter_block took 3.5x as long.
    return submit(CommOp::reduce_scatter, ring_bytes_sent(CommOp::reduce_scatter, input.nbytes(), world_),
                  [=, this]() mutable {
                    ring_reduce_scatter(output, input, op, rank_, world_,
                                        [](const void* send, int to, int from, int64_t bytes, void* scratch,
                                           const Consume& consume) {
                                          check(MPI_Sendrecv(send, static_cast<int>(bytes), MPI_BYTE, to, 0, scratch,
                                                             static_cast<int>(bytes), MPI_BYTE, from, 0,
                                                             MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                                                "reduce_scatter");
                                          consume(scratch);
                                        });
                  });
  }

  WorkPtr all_gather(Tensor& output, const Tensor& input) override {
    ZT_CHECK(output.numel() == input.numel() * world_ && input.dtype() == output.dtype(),
             "all_gather: input {} output {} world {}", input.shape_str(), output.shape_str(), world_);
    const bool in_place = input.raw() == static_cast<char*>(output.raw()) + rank_ * input.nbytes();
    return submit(CommOp::all_gather, ring_bytes_sent(CommOp::all_gather, output.nbytes(), world_),
                  [=]() mutable {
                    const int n = static_cast<int>(input.nbytes());
                    check(MPI_Allgather(in_place ? MPI_IN_PLACE : input.raw(), n, MPI_BYTE, output.raw(), n,
                                        MPI_BYTE, MPI_COMM_WORLD),
                          "all_gather");
                  });
  }

  WorkPtr broadcast(Tensor& buffer, int root) override {
    return submit(CommOp::broadcast, ring_bytes_sent(CommOp::broadcast, buffer.nbytes(), world_, rank_ == root),
                  [=]() mutable {
                    check(MPI_Bcast(buffer.raw(), static_cast<int>(buffer.nbytes()), MPI_BYTE, root, MPI_COMM_WORLD),
                          "broadcast");
                  });
  }

  WorkPtr barrier() override {
    return submit(CommOp::barrier, 0, [] { check(MPI_Barrier(MPI_COMM_WORLD), "barrier"); });
  }

 private:
  int rank_ = 0, world_ = 1;
};

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_RANK") != nullptr;
}

std::unique_ptr<Communicator> make_mpi_comm() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "init");
    if (provided < MPI_THREAD_SERIALIZED) fail("MPI provides thread level {}, zerotrain needs SERIALIZED", provided);
    std::atexit(finalize_mpi);
  }
  return std::make_unique<MpiComm>();
}

}  // namespace zt
