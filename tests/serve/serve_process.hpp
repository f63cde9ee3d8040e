#pragma once
// ServeProcess: a `troupe serve` running in the background for the serve suite, on a free port,
// and HTTP calls to it made with `curl` (each a tests/child_process.hpp run with a deadline).
//
// Contract. The constructor starts `troupe serve ARGS --port 0` in its own process group, reads
// its stderr on a thread of its own, and returns once the server printed its ready line (it fails
// the test with the server's output when the server exits first or the deadline passes). The
// destructor sends SIGTERM, waits (bounded) and SIGKILLs the group if it must. Blocking helpers,
// for one test thread at a time per call; http() may run on several threads at once.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace troupe::test {

struct HttpReply {
  int status = 0;               // 0 when curl failed (the reason is in body)
  std::string body;             // the response body as received
  nlohmann::json json() const;  // the body parsed (fails the test when it is not JSON)
};

// The "data: ..." payloads of a server-sent event stream, in order ("[DONE]" included).
std::vector<std::string> sse_events(const std::string& body);

class ServeProcess {
 public:
  explicit ServeProcess(const std::string& args, std::chrono::seconds deadline = std::chrono::seconds(240));
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // the troupe serve process
  std::string url(const std::string& path) const;
  std::string log() const;  // what the server printed so far

  // curl -X METHOD url(path) with `body` (sent from a file) and extra curl arguments.
  HttpReply http(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& curl_args = "", std::chrono::seconds deadline = std::chrono::seconds(120)) const;
  HttpReply post(const std::string& path, const nlohmann::json& body, const std::string& curl_args = "") const {
    return http("POST", path, body.dump(), curl_args);
  }
  // The value of a metric line "name value" (or "name{labels} value") in /metrics; -1 when absent.
  double metric(const std::string& name_with_labels) const;

 private:
  void stop();  // SIGTERM, a bounded wait, then SIGKILL of the group; joins the reader

  pid_t pid_ = -1;
  int port_ = 0;
  int err_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string log_;
  bool eof_ = false;
};

}  // namespace troupe::test
