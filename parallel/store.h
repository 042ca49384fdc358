// A TCP key-value store for rendezvous (as torch's TCPStore): one process serves it, every
// rank connects as a client. It only bootstraps: backends exchange addresses through it and
// never see how ranks were found. Every blocking call has a timeout whose error names the
// address and what was awaited.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zt {

using Bytes = std::vector<char>;

class StoreServer {
 public:
  // Listens on host:port (port 0 picks a free one); serves until destroyed.
  StoreServer(const std::string& host, int port);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class StoreClient {
 public:
  // Connects, retrying until `timeout` (the server may start later than the client).
  StoreClient(const std::string& host, int port, std::chrono::milliseconds timeout);
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  void set(const std::string& key, const Bytes& value);
  // Blocks until the key exists (or the timeout passes).
  Bytes get(const std::string& key);
  // Atomically adds to an integer counter (0 if absent) and returns the new value.
  int64_t add(const std::string& key, int64_t delta);
  // Blocks until every key exists.
  void wait(const std::vector<std::string>& keys);
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  Bytes request(char op, const std::string& key, const Bytes& value, std::chrono::milliseconds timeout);
  std::string address_;
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
};

}  // namespace zt
