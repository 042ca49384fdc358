#include "parallel/nccl_bootstrap.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "parallel/store.h"

namespace zt {

namespace {

// One rank's check-in record: the length of its problem, then the text (cut to fit).
constexpr size_t kRecordBytes = 512;
constexpr size_t kRecordTextBytes = kRecordBytes - sizeof(int32_t);

// Host tensors of raw bytes travel as i32 words (the collectives move whole elements).
Tensor host_words(size_t bytes) {
  return Tensor::zeros({static_cast<int64_t>(bytes / sizeof(int32_t))}, DType::i32, MemTag::comm);
}

}  // namespace

DeviceChoice device_for_local_rank(int local_rank, int visible_gpus) {
  DeviceChoice c;
  if (local_rank < 0 || local_rank >= visible_gpus) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    c.problem = fmt::format(
        "LOCAL_RANK {} needs GPU cuda:{} but this node shows {} GPU(s){}: start at most {} rank(s) per node "
        "(zt launch --nproc-per-node, mpirun -npernode)",
        local_rank, local_rank, visible_gpus, visible ? fmt::format(" (CUDA_VISIBLE_DEVICES={})", visible) : "",
        visible_gpus);
    return c;
  }
  c.device = Device::cuda(local_rank);
  return c;
}

void check_in(Communicator& host, const std::string& problem) {
  const int world = host.world_size(), rank = host.rank();
  Tensor mine = host_words(kRecordBytes);
  const int32_t len = static_cast<int32_t>(std::min(problem.size(), kRecordTextBytes));
  std::memcpy(mine.raw(), &len, sizeof len);
  std::memcpy(static_cast<char*>(mine.raw()) + sizeof len, problem.data(), static_cast<size_t>(len));
  Tensor all = host_words(kRecordBytes * static_cast<size_t>(world));
  host.all_gather(all, mine)->wait();
  std::vector<std::string> problems;
  for (int r = 0; r < world; ++r) {
    const char* rec = static_cast<const char*>(all.raw()) + kRecordBytes * static_cast<size_t>(r);
    int32_t n = 0;
    std::memcpy(&n, rec, sizeof n);
    ZT_CHECK(n >= 0 && static_cast<size_t>(n) <= kRecordTextBytes, "check-in record of rank {} is corrupt", r);
    if (n > 0) problems.push_back(fmt::format("rank {}: {}", r, std::string(rec + sizeof n, static_cast<size_t>(n))));
  }
  if (!problems.empty())
    fail("NCCL: rank {} stops because {} of {} rank(s) cannot start: {}", rank, problems.size(), world,
         fmt::join(problems, "; "));
}

NcclIdBytes share_unique_id(Communicator& host, const std::function<NcclIdBytes()>& make_id) {
  Tensor buf = host_words(kNcclIdBytes);
  if (host.rank() == 0) {
    const NcclIdBytes id = make_id();
    std::memcpy(buf.raw(), id.data(), kNcclIdBytes);
  }
  host.broadcast(buf, 0)->wait();
  NcclIdBytes id;
  std::memcpy(id.data(), buf.raw(), kNcclIdBytes);
  return id;
}

ArrivalBoard::ArrivalBoard(StoreClient* store, std::string prefix, int world)
    : store_(store), prefix_(std::move(prefix)), world_(world) {}

void ArrivalBoard::arrive(int rank) {
  if (store_) store_->add(prefix_ + "/" + std::to_string(rank), 1);
}

std::vector<int> ArrivalBoard::missing() {
  std::vector<int> out;
  if (!store_) return out;
  for (int r = 0; r < world_; ++r)
    if (store_->add(prefix_ + "/" + std::to_string(r), 0) == 0) out.push_back(r);
  return out;
}

std::string ArrivalBoard::describe_missing() {
  if (!store_)
    return "without a store (mpirun) the ranks that did not arrive cannot be named; every rank passed the host "
           "check-in, so look for a rank that stalled after it, or at NCCL's network (NCCL_DEBUG=INFO, "
           "NCCL_SOCKET_IFNAME)";
  try {
    const std::vector<int> m = missing();
    if (m.empty())
      return "every rank reached it, so NCCL could not connect them (NCCL_DEBUG=INFO; NCCL_SOCKET_IFNAME, "
             "NCCL_IB_HCA)";
    return fmt::format("rank(s) {} never reached it (stuck or dead)", fmt::join(m, ", "));
  } catch (const std::exception& e) {
    return fmt::format("the store could not say which rank is missing ({})", e.what());
  }
}

}  // namespace zt
