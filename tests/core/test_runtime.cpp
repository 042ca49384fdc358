// Rank discovery from each launcher's environment, and threads per rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/runtime.h"

namespace zt {
namespace {

// Sets the given variables (and clears every launcher variable first) for one scope.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars) {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK",
                          "OMPI_COMM_WORLD_LOCAL_SIZE", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                          "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                          "SLURM_NTASKS_PER_NODE"}) {
      if (const char* old = std::getenv(v)) saved_[v] = old;
      unsetenv(v);
    }
    for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
    set_ = vars;
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : set_) unsetenv(k.c_str());
    for (const auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  std::map<std::string, std::string> saved_, set_;
};

TEST(Runtime, DiscoversMpirunTorchrunAndSlurm) {
  {
    ScopedEnv env({});
    RankInfo r = discover_rank();
    EXPECT_EQ(r.launcher, "none");
    EXPECT_EQ(r.world_size, 1);
  }
  {
    ScopedEnv env({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                   {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
    RankInfo r = discover_rank();
    EXPECT_EQ(r.launcher, "mpirun");
    EXPECT_EQ(r.rank, 5);
    EXPECT_EQ(r.world_size, 8);
    EXPECT_EQ(r.local_rank, 1);
    EXPECT_EQ(r.local_world_size, 4);
  }
  {
    ScopedEnv env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "1234"}});
    RankInfo r = discover_rank();
    EXPECT_EQ(r.launcher, "torchrun");
    EXPECT_EQ(r.rank, 3);
    EXPECT_EQ(r.master_addr, "10.1.2.3");
    EXPECT_EQ(r.master_port, 1234);
    EXPECT_EQ(threads_per_rank(0, r), std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2));
    EXPECT_EQ(threads_per_rank(3, r), 3);
  }
  {
    ScopedEnv env({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "3"}, {"SLURM_LOCALID", "0"}, {"SLURM_NTASKS_PER_NODE", "1"}});
    RankInfo r = discover_rank();
    EXPECT_EQ(r.launcher, "slurm");
    EXPECT_EQ(r.rank, 2);
    EXPECT_EQ(r.world_size, 3);
  }
}

TEST(Runtime, MalformedVariablesAreErrorsNamingThem) {
  {
    ScopedEnv env({{"RANK", "x"}, {"WORLD_SIZE", "2"}});
    try {
      discover_rank();
      FAIL();
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("RANK=x"));
    }
  }
  {
    ScopedEnv env({{"RANK", "4"}, {"WORLD_SIZE", "2"}});
    EXPECT_THROW(discover_rank(), Error);
  }
}

}  // namespace
}  // namespace zt
