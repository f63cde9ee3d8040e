#include "comm/tcp_rendezvous.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

namespace {

sockaddr_in make_address(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) fail("rendezvous: '{}' is not an IPv4 address", host);
  return addr;
}

// Reads or writes exactly `bytes`, waiting at most until `deadline`; `who` names the peer.
void transfer(int fd, void* data, size_t bytes, bool writing, const Deadline& deadline, const std::string& who) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    pollfd pfd{fd, short(writing ? POLLOUT : POLLIN), 0};
    int ready = poll(&pfd, 1, deadline.remaining_ms());
    if (ready == 0)
      fail("rendezvous: {} did not {} within {} ms", who, writing ? "read" : "send", deadline.timeout().count());
    if (ready < 0 && errno == EINTR) continue;
    ssize_t n = writing ? ::send(fd, p, bytes, MSG_NOSIGNAL) : ::recv(fd, p, bytes, 0);
    if (n == 0) fail("rendezvous: {} closed the connection", who);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fail("rendezvous: connection to {} failed: {}", who, std::strerror(errno));
    }
    p += n;
    bytes -= size_t(n);
  }
}

void send_blob(int fd, const std::string& blob, const Deadline& d, const std::string& who) {
  uint64_t len = blob.size();
  transfer(fd, &len, sizeof len, true, d, who);
  transfer(fd, const_cast<char*>(blob.data()), blob.size(), true, d, who);
}

std::string recv_blob(int fd, const Deadline& d, const std::string& who) {
  uint64_t len = 0;
  transfer(fd, &len, sizeof len, false, d, who);
  if (len > (1u << 30)) fail("rendezvous: {} announced a {}-byte blob", who, len);
  std::string blob(len, '\0');
  transfer(fd, blob.data(), len, false, d, who);
  return blob;
}

}  // namespace

TcpRendezvous::TcpRendezvous(std::string host, int port, int rank, int size, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), rank_(rank), size_(size), timeout_(timeout) {
  if (size < 1 || rank < 0 || rank >= size) fail("rendezvous: rank {} outside a world of {}", rank, size);
  sockaddr_in addr = make_address(host_, port_);
  Deadline deadline(timeout_);
  if (rank_ == 0) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, size_) != 0) {
      int err = errno;
      close(listen_fd_);
      fail("rendezvous: rank 0 cannot listen on {}:{}: {}", host_, port_, std::strerror(err));
    }
    fds_.assign(size_t(size_), -1);
    accept_all();
    return;
  }
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fds_.push_back(fd);
      uint32_t me = uint32_t(rank_);
      transfer(fd, &me, sizeof me, true, deadline, "rank 0");
      return;
    }
    close(fd);
    if (deadline.expired())
      fail("rendezvous: rank {} could not reach rank 0 at {}:{} within {} ms", rank_, host_, port_, timeout_.count());
    nap_microseconds(5000);
  }
}

void TcpRendezvous::accept_all() {
  Deadline deadline(timeout_);
  for (int joined = 1; joined < size_;) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (poll(&pfd, 1, deadline.remaining_ms()) <= 0) {
      std::string missing;
      for (int r = 1; r < size_; ++r)
        if (fds_[size_t(r)] < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      fail("rendezvous: rank(s) {} did not connect to {}:{} within {} ms", missing, host_, port_, timeout_.count());
    }
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint32_t who = 0;
    transfer(fd, &who, sizeof who, false, deadline, "a connecting rank");
    if (who == 0 || who >= uint32_t(size_) || fds_[who] >= 0) {
      close(fd);
      fail("rendezvous: a peer claimed rank {} (world of {}, or a duplicate)", who, size_);
    }
    fds_[who] = fd;
    ++joined;
  }
}

TcpRendezvous::~TcpRendezvous() {
  for (int fd : fds_)
    if (fd >= 0) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::vector<std::string> TcpRendezvous::all_gather(const std::string& mine) {
  Deadline deadline(timeout_);
  std::vector<std::string> all(static_cast<size_t>(size_));
  all[size_t(rank_)] = mine;
  if (rank_ == 0) {
    for (int r = 1; r < size_; ++r) all[size_t(r)] = recv_blob(fds_[size_t(r)], deadline, "rank " + std::to_string(r));
    for (int r = 1; r < size_; ++r)
      for (const auto& blob : all) send_blob(fds_[size_t(r)], blob, deadline, "rank " + std::to_string(r));
    return all;
  }
  send_blob(fds_[0], mine, deadline, "rank 0");
  for (int r = 0; r < size_; ++r) all[size_t(r)] = recv_blob(fds_[0], deadline, "rank 0");
  return all;
}

int TcpRendezvous::free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = make_address("127.0.0.1", 0);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    fail("rendezvous: cannot find a free port: {}", std::strerror(errno));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace troupe
