#pragma once
// troupe::Client: submit requests to a cluster and receive their tokens as they stream.
//
//   auto client = troupe::Client::connect("127.0.0.1", 47011, 30s);   // a running cluster
//   client->wait_until_ready(60s);
//   SubmitRequest req;  req.prompt = "Once upon a time";  req.max_tokens = 32;
//   FinishedEvent out = client->generate(req, [](const TokenEvent& t) { std::cout << t.text; });
//
// The same calls work in-process (Client(system, engine)). Every callback runs on the client's
// listener actor thread, one at a time, in stream order (tokens that arrive before submit()
// returns are held and delivered first); a callback must not block for long. Every blocking call
// has a timeout; a lost connection fails the pending requests with an error event instead of hanging.
#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"

namespace troupe {

class Client {
 public:
  using TokenCallback = std::function<void(const TokenEvent&)>;
  using FinishedCallback = std::function<void(const FinishedEvent&)>;

  // Connects to the coordinator published at host:port (retrying until `timeout`) and asks it
  // for the engine; through mutual TLS with `tls` (a client certificate the cluster CA signed).
  // Throws troupe::Error naming the address when nobody answers.
  static std::unique_ptr<Client> connect(const std::string& host, int port, std::chrono::milliseconds timeout,
                                         const TlsCredentials& tls = {});
  // In-process: `coordinator` is a local coordinator actor.
  Client(caf::actor_system& system, const CoordinatorHandle& coordinator,
         std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Returns the request id; events follow on the callbacks (exactly one FinishedEvent).
  int64_t submit(const SubmitRequest& request, TokenCallback on_token, FinishedCallback on_finished);
  // Blocks until the request finishes (or `timeout`: then it is cancelled and an error event returned).
  FinishedEvent generate(const SubmitRequest& request, TokenCallback on_token = {},
                         std::chrono::milliseconds timeout = std::chrono::minutes(10));
  // Cancels and waits for the request's FinishedEvent (an error event for an unknown id).
  FinishedEvent cancel(int64_t request_id, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Drops what the client keeps of a finished request for generate()/cancel() waiters (its
  // FinishedEvent). Long-running callers of submit() (a server) call it once a request is done
  // and nobody will cancel() it, so the client's memory does not grow with every request.
  void forget(int64_t request_id);
  ClusterStatus status(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The step timings the coordinator recorded since the last call ([experiment] record_timeline).
  Timeline take_timeline(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Polls until the cluster is ready (returns its status) or degraded / `timeout` (throws).
  ClusterStatus wait_until_ready(std::chrono::milliseconds timeout);

  struct State;
  // The listener: a ListenerHandle that also takes the client's own flush messages.
  using Listener = ListenerHandle::extend<caf::reacts_to<caf::atom_constant<caf::atom("flush")>, int64_t>>;

 private:
  Client() = default;
  void init(caf::actor_system& system, const CoordinatorHandle& coordinator, std::chrono::milliseconds timeout);

  std::unique_ptr<caf::actor_system_config> own_config_;
  std::unique_ptr<caf::actor_system> own_system_;
  caf::actor_system* system_ = nullptr;
  CoordinatorHandle coordinator_;
  EngineHandle engine_;
  Listener listener_;
  std::shared_ptr<State> state_;
};

}  // namespace troupe
