#include "serve/http_server.hpp"

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <optional>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "kernels/error.hpp"

namespace troupe::serve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return "";
}

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

std::string status_line(int status) {
  auto reason = http::obsolete_reason(http::status(status));
  return fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
}

}  // namespace

namespace {

class Session : public Responder, public std::enable_shared_from_this<Session> {
 public:
  // `owner` (the server's state) is kept alive by the session: the io_context outlives every socket.
  Session(tcp::socket socket, std::shared_ptr<void> owner, const HttpHandler& handler, const HttpLimits& limits,
          std::shared_ptr<std::atomic<int>> connections)
      : owner_(std::move(owner)),
        socket_(std::move(socket)),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        handler_(handler),
        limits_(limits),
        connections_(std::move(connections)) {}

  auto executor() { return socket_.get_executor(); }

  void start() { start_read(); }

  // Answers 503 (too many connections) and closes.
  void reject() { fail_request(503, "too many open connections; try again later"); }

  void close_from_server() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  // ---- Responder (any thread) ----
  void respond(int status, std::string content_type, std::string body,
               std::vector<std::string> extra_headers) override {
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), status, type = std::move(content_type),
                                           body = std::move(body), extra = std::move(extra_headers)]() mutable {
      if (self->closed_ || self->response_done_) return;
      std::string head = status_line(status);
      head += "Server: troupe\r\nContent-Type: " + type + "\r\n";
      head += fmt::format("Content-Length: {}\r\n", body.size());
      head += self->keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
      for (const auto& line : extra) head += line + "\r\n";
      head += "\r\n";
      self->response_done_ = true;
      self->enqueue(head + body);
    });
  }
  void begin_stream(int status, std::string content_type) override {
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), status, type = std::move(content_type)] {
      if (self->closed_ || self->streaming_ || self->response_done_) return;
      self->streaming_ = true;
      self->chunked_ = self->http11_;
      if (!self->chunked_) self->keep_alive_ = false;  // HTTP/1.0: the body ends with the connection
      std::string head = status_line(status);
      head += "Server: troupe\r\nContent-Type: " + type + "\r\nCache-Control: no-cache\r\n";
      head += self->chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
      head += self->keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
      self->enqueue(std::move(head));
    });
  }
  void write(std::string piece) override {
    if (piece.empty()) return;
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), piece = std::move(piece)]() mutable {
      if (self->closed_ || !self->streaming_ || self->response_done_) return;
      if (self->chunked_)
        self->enqueue(fmt::format("{:x}\r\n{}\r\n", piece.size(), piece));
      else
        self->enqueue(std::move(piece));
    });
  }
  void end_stream() override {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      if (self->closed_ || !self->streaming_ || self->response_done_) return;
      self->response_done_ = true;
      self->enqueue(self->chunked_ ? "0\r\n\r\n" : "");
    });
  }
  void on_disconnect(std::function<void()> callback) override {
    net::dispatch(socket_.get_executor(), [self = shared_from_this(), cb = std::move(callback)]() mutable {
      if (self->closed_) {
        if (cb) cb();
        return;
      }
      self->disconnect_ = std::move(cb);
    });
  }
  bool closed() const override { return closed_flag_.load(); }
  void post(std::function<void()> work) override { net::post(socket_.get_executor(), std::move(work)); }

 private:
  // ---- reading a request ----
  void start_read() {
    parser_.emplace();
    parser_->header_limit(uint32_t(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    arm(read_timer_, buffer_.size() ? limits_.read_timeout_s : limits_.idle_timeout_s);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done())
      enqueue("HTTP/1.1 100 Continue\r\n\r\n");
    if (parser_->is_done()) return on_request();
    arm(read_timer_, limits_.read_timeout_s);
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(beast::error_code ec) {
    read_timer_.cancel();
    if (closed_) return;
    if (ec == http::error::body_limit)
      return fail_request(413, fmt::format("request body exceeds the limit of {} bytes", limits_.max_body_bytes));
    if (ec == http::error::header_limit)
      return fail_request(431, fmt::format("request headers exceed the limit of {} bytes", limits_.max_header_bytes));
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || buffer_.size() == 0)
      return close();
    fail_request(400, fmt::format("unreadable HTTP request ({})", ec.message()));
  }

  void on_request() {
    read_timer_.cancel();
    auto& req = parser_->get();
    HttpRequest out;
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    out.path = out.target.substr(0, out.target.find('?'));
    out.body = std::move(req.body());
    for (const auto& field : req) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      out.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    keep_alive_ = req.keep_alive();
    http11_ = req.version() >= 11;
    busy_ = true;
    streaming_ = chunked_ = response_done_ = false;
    disconnect_ = nullptr;
    parser_.reset();
    watch();
    handler_(std::move(out), shared_from_this());
  }

  // While a response is being made: notice the client going away (readable with nothing to read).
  void watch() {
    if (watching_ || closed_) return;
    watching_ = true;
    const uint64_t generation = ++watch_generation_;
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), generation](beast::error_code ec) {
      if (generation != self->watch_generation_) return;  // cancelled, and maybe a newer watch is on
      self->watching_ = false;
      if (ec == net::error::operation_aborted || self->closed_ || !self->busy_) return;
      char byte;
      beast::error_code peek_error;
      self->socket_.non_blocking(true);
      size_t n = self->socket_.receive(net::buffer(&byte, 1), tcp::socket::message_peek, peek_error);
      self->socket_.non_blocking(false);
      if (ec || (!peek_error && n == 0) || (peek_error && peek_error != net::error::would_block)) {
        self->close();  // gone: runs the disconnect callback
        return;
      }
      // A pipelined request arrived: it is read once this response is done; no further watching.
    });
  }

  // ---- writing ----
  void enqueue(std::string bytes) {
    pending_ += bytes;
    if (!writing_) flush();
  }

  void flush() {
    if (closed_) return;
    if (pending_.empty()) {
      if (response_done_ && busy_) finish_response();
      return;
    }
    writing_ = true;
    inflight_.swap(pending_);
    pending_.clear();
    arm(write_timer_, limits_.write_timeout_s);
    net::async_write(socket_, net::buffer(inflight_), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->write_timer_.cancel();
      self->writing_ = false;
      self->inflight_.clear();
      if (ec) return self->close();
      self->flush();
    });
  }

  void finish_response() {
    busy_ = false;
    disconnect_ = nullptr;
    if (watching_) {
      watching_ = false;
      ++watch_generation_;  // the cancelled wait's handler ignores itself; the next request watches anew
      beast::error_code ignored;
      socket_.cancel(ignored);  // no write is in flight now; only the watch is cancelled
    }
    if (rejecting_) return drain_and_close();
    if (keep_alive_) return start_read();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    close();
  }

  // Answers a request the server refuses itself, then closes after draining what the client sent.
  void fail_request(int status, const std::string& message) {
    rejecting_ = true;
    keep_alive_ = false;
    busy_ = true;
    response_done_ = false;
    respond(status, "application/json", error_body(status, message), {});
  }

  void drain_and_close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm(read_timer_, 2.0);
    drain_.resize(1 << 16);
    socket_.async_read_some(net::buffer(drain_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > (size_t(8) << 20)) return self->close();
      self->drain_and_close();
    });
  }

  static std::string error_body(int status, const std::string& message) {
    const char* type = status == 413 || status == 431 || status == 400 ? "invalid_request_error"
                       : status == 503                                 ? "service_unavailable"
                                                                       : "error";
    std::string escaped;
    for (char c : message) escaped += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return fmt::format(R"({{"error":{{"message":"{}","type":"{}","param":null,"code":{}}}}})", escaped, type, status);
  }

  void arm(net::steady_timer& timer, double timeout_s) {
    timer.expires_after(seconds(timeout_s));
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->close();  // a slow or idle client
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    closed_flag_ = true;
    read_timer_.cancel();
    write_timer_.cancel();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    connections_->fetch_sub(1);
    if (busy_ && !response_done_ && disconnect_) {
      auto cb = std::move(disconnect_);
      disconnect_ = nullptr;
      cb();
    }
    disconnect_ = nullptr;
  }

  std::shared_ptr<void> owner_;
  tcp::socket socket_;
  net::steady_timer read_timer_, write_timer_;
  const HttpHandler& handler_;
  const HttpLimits& limits_;
  std::shared_ptr<std::atomic<int>> connections_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string pending_, inflight_, drain_;
  size_t drained_ = 0;
  uint64_t watch_generation_ = 0;
  std::function<void()> disconnect_;
  bool keep_alive_ = false, http11_ = true, busy_ = false, streaming_ = false, chunked_ = false;
  bool response_done_ = false, writing_ = false, watching_ = false, closed_ = false, rejecting_ = false;
  std::atomic<bool> closed_flag_{false};
};

}  // namespace

struct HttpServer::Impl {
  HttpHandler handler;
  HttpLimits limits;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  std::mutex sessions_mutex;
  std::vector<std::weak_ptr<Session>> sessions;
};

HttpServer::HttpServer(HttpHandler handler, HttpLimits limits) : impl_(std::make_shared<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->limits = limits;
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port, int threads) {
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) fail("--host {}: not an IP address ({})", host, ec.message());
  tcp::endpoint endpoint(address, uint16_t(port));
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on {}:{} ({})", host, port, ec.message());
  port_ = acceptor.local_endpoint().port();
  accept_next();
  for (int i = 0; i < std::max(1, threads); ++i)
    threads_.emplace_back([impl = impl_] {
      pthread_setname_np(pthread_self(), "troupe-http");  // as top and perf show it
      impl->ioc.run();
    });
  return port_;
}

void HttpServer::accept_next() {
  impl_->acceptor.async_accept(net::make_strand(impl_->ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !impl_->acceptor.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      auto session = std::make_shared<Session>(std::move(socket), impl_, impl_->handler, impl_->limits, connections_);
      const bool over = connections_->fetch_add(1) >= impl_->limits.max_connections;
      {
        std::lock_guard lock(impl_->sessions_mutex);
        auto& list = impl_->sessions;
        list.erase(std::remove_if(list.begin(), list.end(), [](auto& w) { return w.expired(); }), list.end());
        list.push_back(session);
      }
      net::dispatch(session->executor(), [session, over] {
        if (over)
          session->reject();
        else
          session->start();
      });
    }
    accept_next();
  });
}

void HttpServer::stop() {
  if (!impl_ || threads_.empty()) return;
  net::post(impl_->ioc, [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& weak : impl_->sessions)
      if (auto session = weak.lock()) session->close_from_server();
  }
  impl_->work.reset();
  for (auto& t : threads_) t.join();
  threads_.clear();
  impl_->ioc.restart();
  impl_->ioc.poll();  // runs what is still queued (closes), so connections let go of the server state
}

}  // namespace troupe::serve
