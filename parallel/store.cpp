#include "parallel/store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace zt {

namespace {

// Wire format, both directions: op (1 byte), key length (u32), key, value length (u32),
// value. Replies use op 'o' (ok) or 't' (timed out).
constexpr char kSet = 's', kGet = 'g', kAdd = 'a', kWait = 'w', kOk = 'o', kTimeout = 't';

bool read_all(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_all(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool send_msg(int fd, char op, const std::string& key, const Bytes& value) {
  const uint32_t kl = static_cast<uint32_t>(key.size()), vl = static_cast<uint32_t>(value.size());
  return write_all(fd, &op, 1) && write_all(fd, &kl, 4) && write_all(fd, key.data(), kl) && write_all(fd, &vl, 4) &&
         write_all(fd, value.data(), vl);
}

bool recv_msg(int fd, char& op, std::string& key, Bytes& value) {
  uint32_t kl = 0, vl = 0;
  if (!read_all(fd, &op, 1) || !read_all(fd, &kl, 4)) return false;
  key.resize(kl);
  if (!read_all(fd, key.data(), kl) || !read_all(fd, &vl, 4)) return false;
  value.resize(vl);
  return read_all(fd, value.data(), vl);
}

}  // namespace

struct StoreServer::Impl {
  int listen_fd = -1;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Bytes> data;
  std::thread acceptor;
  std::vector<std::thread> handlers;
  std::vector<int> client_fds;

  // Each client gets a thread; get/wait block on the condition variable until the keys
  // exist or the client's timeout (sent as the value of the request) passes.
  void serve(int fd) {
    char op;
    std::string key;
    Bytes value;
    while (!stopping && recv_msg(fd, op, key, value)) {
      Bytes reply;
      char status = kOk;
      if (op == kSet) {
        std::lock_guard<std::mutex> lock(mu);
        data[key] = value;
        cv.notify_all();
      } else if (op == kAdd) {
        int64_t delta = 0;
        std::memcpy(&delta, value.data(), std::min<size_t>(8, value.size()));
        std::lock_guard<std::mutex> lock(mu);
        int64_t cur = 0;
        auto it = data.find(key);
        if (it != data.end() && it->second.size() == 8) std::memcpy(&cur, it->second.data(), 8);
        cur += delta;
        Bytes b(8);
        std::memcpy(b.data(), &cur, 8);
        data[key] = b;
        reply = b;
        cv.notify_all();
      } else if (op == kGet || op == kWait) {
        // key holds one key (get) or several separated by '\0' (wait); value the timeout in ms.
        int64_t ms = 0;
        std::memcpy(&ms, value.data(), std::min<size_t>(8, value.size()));
        std::vector<std::string> keys;
        size_t start = 0;
        for (size_t i = 0; i <= key.size(); ++i)
          if (i == key.size() || key[i] == '\0') {
            keys.push_back(key.substr(start, i - start));
            start = i + 1;
          }
        std::unique_lock<std::mutex> lock(mu);
        const bool ok = cv.wait_for(lock, std::chrono::milliseconds(ms), [&] {
          if (stopping) return true;
          for (const auto& k : keys)
            if (!data.count(k)) return false;
          return true;
        });
        if (!ok || stopping) status = kTimeout;
        else if (op == kGet) reply = data[keys[0]];
      }
      if (!send_msg(fd, status, "", reply)) break;
    }
    ::close(fd);
  }
};

StoreServer::StoreServer(const std::string& host, int port) : impl_(std::make_unique<Impl>()) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("store: socket failed: {}", std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty() || host == "0.0.0.0") {
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    fail("store: '{}' is not an IPv4 address", host);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    fail("store: cannot listen on {}:{}: {}", host, port, err);
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl_->listen_fd = fd;
  impl_->port = ntohs(addr.sin_port);
  Impl* impl = impl_.get();
  impl_->acceptor = std::thread([impl] {
    while (!impl->stopping) {
      pollfd p{impl->listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(impl->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->client_fds.push_back(c);
      impl->handlers.emplace_back([impl, c] { impl->serve(c); });
    }
  });
}

StoreServer::~StoreServer() {
  impl_->stopping = true;
  impl_->cv.notify_all();
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (int fd : impl_->client_fds) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : impl_->handlers)
    if (t.joinable()) t.join();
  ::close(impl_->listen_fd);
}

int StoreServer::port() const { return impl_->port; }

StoreClient::StoreClient(const std::string& host, int port, std::chrono::milliseconds timeout)
    : address_(host + ":" + std::to_string(port)), timeout_(timeout) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    fail("store: cannot resolve {}", address_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fd_ = fd;
      break;
    }
    if (fd >= 0) ::close(fd);
    if (std::chrono::steady_clock::now() >= deadline) {
      freeaddrinfo(res);
      fail("store: timed out after {} ms connecting to {}", timeout.count(), address_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  freeaddrinfo(res);
}

StoreClient::~StoreClient() {
  if (fd_ >= 0) ::close(fd_);
}

Bytes StoreClient::request(char op, const std::string& key, const Bytes& value, std::chrono::milliseconds timeout) {
  char status;
  std::string k;
  Bytes reply;
  if (!send_msg(fd_, op, key, value) || !recv_msg(fd_, status, k, reply))
    fail("store: connection to {} lost", address_);
  if (status == kTimeout) {
    std::string what = key;
    std::replace(what.begin(), what.end(), '\0', ',');
    fail("store: timed out after {} ms at {} waiting for key(s) '{}'", timeout.count(), address_, what);
  }
  return reply;
}

void StoreClient::set(const std::string& key, const Bytes& value) { request(kSet, key, value, timeout_); }

static Bytes encode_ms(std::chrono::milliseconds t) {
  Bytes b(8);
  const int64_t ms = t.count();
  std::memcpy(b.data(), &ms, 8);
  return b;
}

Bytes StoreClient::get(const std::string& key) { return request(kGet, key, encode_ms(timeout_), timeout_); }

int64_t StoreClient::add(const std::string& key, int64_t delta) {
  Bytes b(8);
  std::memcpy(b.data(), &delta, 8);
  Bytes r = request(kAdd, key, b, timeout_);
  int64_t v = 0;
  std::memcpy(&v, r.data(), 8);
  return v;
}

void StoreClient::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void StoreClient::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::string joined;
  for (size_t i = 0; i < keys.size(); ++i) joined += (i ? std::string(1, '\0') : "") + keys[i];
  request(kWait, joined, encode_ms(timeout), timeout);
}

}  // namespace zt
