#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "parallel/store.h"

namespace zt {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

TEST(Store, SetGetAddAndBlockingGet) {
  StoreServer server("127.0.0.1", 0);
  StoreClient a("127.0.0.1", server.port(), 5000ms), b("127.0.0.1", server.port(), 5000ms);
  a.set("x", bytes("hello"));
  EXPECT_EQ(b.get("x"), bytes("hello"));
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    a.set("late", bytes("v"));
  });
  EXPECT_EQ(b.get("late"), bytes("v"));  // blocks until set
  late.join();
  std::vector<std::thread> adders;
  for (int t = 0; t < 4; ++t)
    adders.emplace_back([&] {
      StoreClient c("127.0.0.1", server.port(), 5000ms);
      for (int i = 0; i < 25; ++i) c.add("counter", 1);
    });
  for (auto& t : adders) t.join();
  EXPECT_EQ(a.add("counter", 0), 100);
  b.wait({"x", "late", "counter"});
}

TEST(Store, TimeoutsNameTheAddressAndTheKey) {
  StoreServer server("127.0.0.1", 0);
  StoreClient c("127.0.0.1", server.port(), 200ms);
  try {
    c.get("never");
    FAIL() << "no timeout";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(server.port())));
    EXPECT_THAT(e.what(), HasSubstr("'never'"));
  }
  try {
    c.wait({"a", "b"}, 100ms);
    FAIL() << "no timeout";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'a,b'"));
  }
  int closed_port;
  {
    StoreServer gone("127.0.0.1", 0);
    closed_port = gone.port();
  }
  try {
    StoreClient nobody("127.0.0.1", closed_port, 200ms);
    FAIL() << "connected to a closed port";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("timed out after 200 ms connecting to 127.0.0.1:" + std::to_string(closed_port)));
  }
}

}  // namespace
}  // namespace zt
