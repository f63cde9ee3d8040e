#pragma once
// troupe::serve::HttpServer: a small HTTP/1.1 server on Boost.Beast/Asio for the OpenAI API.
//
// Contract. It accepts connections on host:port (port 0 picks a free one; port() tells which),
// reads one request at a time per connection under limits (header bytes, body bytes, read and idle
// timeouts), and hands each complete request to the Handler on that connection's strand. The
// handler answers through the Responder it is given: one complete response (respond), or a
// stream (begin_stream, then write pieces, then end_stream) sent with chunked transfer encoding,
// which is how server-sent events go out. Requests over the limits are answered by the server
// itself (413 body too large, 431 headers too large, 400 unreadable, 503 too many connections)
// and that connection is closed; every other connection keeps being served.
//
// Threads. start() starts `threads` I/O threads (one serves thousands of streams). Handlers run on them and
// must not block: long work goes elsewhere and answers later through the Responder, whose methods
// may be called from any thread (they post to the connection's strand). Writes are queued and
// coalesced; a client that does not take its bytes within write_timeout is dropped.
//
// Disconnects. While a request is being answered the connection watches its socket; when the
// client goes away before the response is complete, the callback set with on_disconnect runs
// (once, on the strand), so the caller can cancel the work behind it.
//
// Lifetime. The HttpServer owns the io_context and its threads; stop() (or the destructor) closes
// the listener and every connection and joins the threads. Responders hold their connection
// alive (shared_ptr) and become no-ops once it is closed.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace troupe::serve {

struct HttpLimits {
  size_t max_body_bytes = 1 << 20;     // 1 MiB: larger bodies get 413
  size_t max_header_bytes = 16 << 10;  // 16 KiB: larger headers get 431
  int max_connections = 1024;          // more get 503 and are closed
  double read_timeout_s = 30;          // a request must arrive whole within this (slow clients)
  double idle_timeout_s = 60;          // a keep-alive connection with no request is closed after this
  double write_timeout_s = 30;         // a client that does not read its response is dropped
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string path;    // target without the query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  // The value of header `name` (lower case), or "".
  std::string header(const std::string& name) const;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response; extra_headers are "Name: value" lines without CRLF.
  virtual void respond(int status, std::string content_type, std::string body,
                       std::vector<std::string> extra_headers = {}) = 0;
  // A streamed response: the header now, then pieces as they come, then the end.
  virtual void begin_stream(int status, std::string content_type) = 0;
  virtual void write(std::string piece) = 0;
  virtual void end_stream() = 0;
  // Runs once, on the connection's strand, when the client goes away before the response is done.
  virtual void on_disconnect(std::function<void()> callback) = 0;
  // True once the connection is gone (writes are dropped).
  virtual bool closed() const = 0;
  // Runs `work` on the connection's strand (even once it is closed), serialised with the
  // connection's own handlers: how events from other threads reach a request's state.
  virtual void post(std::function<void()> work) = 0;
};

using HttpHandler = std::function<void(HttpRequest request, std::shared_ptr<Responder> responder)>;

class HttpServer {
 public:
  HttpServer(HttpHandler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (throws troupe::Error naming the address when it cannot), then starts the
  // I/O threads. Returns the bound port.
  int start(const std::string& host, int port, int threads = 1);
  int port() const { return port_; }
  // Closes the listener and the connections and joins the I/O threads (idempotent).
  void stop();

  int open_connections() const { return connections_->load(); }

  struct Impl;

 private:
  void accept_next();

  std::shared_ptr<std::atomic<int>> connections_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<Impl> impl_;  // shared with the connections (the io_context outlives them)
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace troupe::serve
