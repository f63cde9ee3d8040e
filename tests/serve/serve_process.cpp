#include "tests/serve/serve_process.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/child_process.hpp"
#include "tests/test_paths.hpp"

namespace troupe::test {

namespace {

std::atomic<int> serial{0};

std::string temp_file(const std::string& contents) {
  auto path =
      std::filesystem::temp_directory_path() / fmt::format("troupe_serve_test_{}_{}.body", ::getpid(), serial++);
  std::ofstream(path, std::ios::binary) << contents;
  return path.string();
}

}  // namespace

nlohmann::json HttpReply::json() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    FAIL("not JSON (status " << status << "): " << body);
  }
  return nullptr;
}

std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) break;
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end + 2;
  }
  return out;
}

ServeProcess::ServeProcess(const std::string& args, std::chrono::seconds deadline) {
  const std::string command =
      fmt::format("exec {} serve {} --port 0", shell_quoted((binary_dir() / "troupe").string()), args);
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  const int rc = troupe::test::spawn_in_own_group({"/bin/sh", "-c", command}, pipe_fds[1], pipe_fds[1], pid_);
  ::close(pipe_fds[1]);
  err_fd_ = pipe_fds[0];
  REQUIRE_MESSAGE(rc == 0, "cannot start troupe serve: " << std::strerror(rc));
  reader_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mutex_);
      if (n <= 0) {
        eof_ = true;
        cv_.notify_all();
        return;
      }
      log_.append(buf, size_t(n));
      cv_.notify_all();
    }
  });
  static const std::regex ready(R"(ready at http://[^:]+:(\d+))");
  std::unique_lock lock(mutex_);
  std::smatch m;
  const bool ok = cv_.wait_for(lock, deadline, [&] { return eof_ || std::regex_search(log_, m, ready); });
  if (!ok || eof_ || m.empty()) {
    std::string out = log_;
    lock.unlock();
    stop();  // the destructor does not run for a constructor that throws
    FAIL("troupe serve " << args << " did not become ready (" << (ok ? "it exited" : "deadline passed") << "):\n"
                         << out);
  }
  port_ = std::stoi(m[1].str());
}

ServeProcess::~ServeProcess() { stop(); }

void ServeProcess::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    {
      std::unique_lock lock(mutex_);
      // The server closes its stderr when it exits (its children too): wait for that, bounded.
      if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return eof_; })) {
        lock.unlock();
        ::kill(-pid_, SIGKILL);
      }
    }
    ::kill(-pid_, SIGKILL);  // anything of its group still there
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
  if (err_fd_ >= 0) ::close(err_fd_);
  err_fd_ = -1;
}

std::string ServeProcess::url(const std::string& path) const {
  return fmt::format("http://127.0.0.1:{}{}", port_, path);
}

std::string ServeProcess::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

HttpReply ServeProcess::http(const std::string& method, const std::string& path, const std::string& body,
                             const std::string& curl_args, std::chrono::seconds deadline) const {
  std::string file = body.empty() ? "" : temp_file(body);
  std::string command =
      fmt::format("curl -sS -N -X {} -w '\\n%{{http_code}}' {} {} {}", method, curl_args,
                  file.empty() ? "" : "-H 'Content-Type: application/json' --data-binary @" + shell_quoted(file),
                  shell_quoted(url(path)));
  ChildResult r = run_shell(command, deadline);
  if (!file.empty()) std::filesystem::remove(file);
  require_no_timeout(r);
  HttpReply reply;
  size_t newline = r.out.rfind('\n');
  if (newline == std::string::npos) return {0, r.err};
  reply.body = r.out.substr(0, newline);
  reply.status = std::atoi(r.out.c_str() + newline + 1);
  if (reply.status == 0) reply.body += r.err;
  return reply;
}

double ServeProcess::metric(const std::string& name_with_labels) const {
  HttpReply r = http("GET", "/metrics");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name_with_labels + " ", 0) == 0) return std::stod(line.substr(name_with_labels.size() + 1));
  return -1;
}

}  // namespace troupe::test
