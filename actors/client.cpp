#include "actors/client.hpp"

#include <caf/io/all.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "kernels/error.hpp"

namespace troupe {

// Shared between the listener actor (which runs every callback) and the calling threads.
struct Client::State {
  std::mutex mutex;
  std::condition_variable cv;
  struct Handlers {
    std::shared_ptr<const TokenCallback> on_token;  // shared: taking it per token copies a pointer, not a closure
    FinishedCallback on_finished;
    bool live = false;  // false until the listener has delivered what arrived before submit() returned
  };
  // Events of a request whose handlers are not live yet, in arrival order.
  struct Unclaimed {
    std::vector<TokenEvent> tokens;
    std::optional<FinishedEvent> finished;
  };
  std::map<int64_t, Handlers> handlers;
  std::map<int64_t, Unclaimed> unclaimed;
  std::map<int64_t, FinishedEvent> finished;  // kept for waiters (generate, cancel)
  std::string connection_error;
};

namespace {

// Sent by submit() to the listener once a request's handlers are registered: the listener delivers
// the events that came before, then the request's handlers go live. So every callback runs on the
// listener's thread, in order, never on two threads at once.
using flush_atom = caf::atom_constant<caf::atom("flush")>;

Client::Listener::behavior_type listener_actor(Client::Listener::pointer self, std::shared_ptr<Client::State> state,
                                               EngineHandle engine) {
  self->monitor(engine);
  // Records the end of a request and runs its callback (listener thread, state unlocked).
  auto finish = [state](const FinishedEvent& e, const Client::FinishedCallback& cb) {
    {
      std::lock_guard lock(state->mutex);
      state->finished[e.request_id] = e;
    }
    if (cb) cb(e);
    state->cv.notify_all();
  };
  self->set_down_handler([state, finish](caf::down_msg&) {
    std::vector<std::pair<int64_t, Client::State::Handlers>> orphans;
    {
      std::lock_guard lock(state->mutex);
      state->connection_error = "lost the connection to the cluster's engine";
      for (auto& [id, h] : state->handlers) orphans.emplace_back(id, h);
      state->handlers.clear();
    }
    for (auto& [id, h] : orphans)
      finish(FinishedEvent{id, FinishReason::Error, "lost the connection to the cluster's engine", {}, {}, "", 0, 0},
             h.on_finished);
  });
  return {
      [state](const TokenEvent& e) {
        std::shared_ptr<const Client::TokenCallback> cb;
        {
          std::lock_guard lock(state->mutex);
          auto it = state->handlers.find(e.request_id);
          if (it == state->handlers.end() || !it->second.live) {
            state->unclaimed[e.request_id].tokens.push_back(e);
            return;
          }
          cb = it->second.on_token;
        }
        if (*cb) (*cb)(e);
      },
      [state, finish](const FinishedEvent& e) {
        Client::FinishedCallback cb;
        {
          std::lock_guard lock(state->mutex);
          auto it = state->handlers.find(e.request_id);
          if (it == state->handlers.end() || !it->second.live) {
            state->unclaimed[e.request_id].finished = e;
            // No handler at all: also the answer to a cancel() of an id this client never submitted.
            if (it == state->handlers.end()) state->finished[e.request_id] = e;
            state->cv.notify_all();
            return;
          }
          cb = it->second.on_finished;
          state->handlers.erase(it);
        }
        finish(e, cb);
      },
      [state, finish](flush_atom, int64_t id) {
        Client::State::Handlers h;
        Client::State::Unclaimed early;
        {
          std::lock_guard lock(state->mutex);
          auto it = state->handlers.find(id);
          if (it == state->handlers.end()) return;  // already failed by a lost connection
          if (auto u = state->unclaimed.find(id); u != state->unclaimed.end()) {
            early = std::move(u->second);
            state->unclaimed.erase(u);
          }
          it->second.live = true;
          h = it->second;
          if (early.finished) state->handlers.erase(it);
        }
        for (const auto& t : early.tokens)
          if (*h.on_token) (*h.on_token)(t);
        if (early.finished) finish(*early.finished, h.on_finished);
      },
  };
}

}  // namespace

std::unique_ptr<Client> Client::connect(const std::string& host, int port, std::chrono::milliseconds timeout,
                                        const TlsCredentials& tls) {
  std::unique_ptr<Client> client(new Client());
  client->own_config_ = make_actor_system_config(tls);
  client->own_system_ = std::make_unique<caf::actor_system>(*client->own_config_);
  client->init(*client->own_system_, connect_to_coordinator(*client->own_system_, host, port, timeout, tls), timeout);
  return client;
}

Client::Client(caf::actor_system& system, const CoordinatorHandle& coordinator, std::chrono::milliseconds timeout) {
  init(system, coordinator, timeout);
}

void Client::init(caf::actor_system& system, const CoordinatorHandle& coordinator, std::chrono::milliseconds timeout) {
  system_ = &system;
  coordinator_ = coordinator;
  caf::scoped_actor self{system};
  self->request(coordinator, timeout, engine_atom::value)
      .receive([&](const EngineHandle& engine) { engine_ = engine; },
               [&](caf::error& e) {
                 fail("the coordinator did not name its engine within {} ms ({})", timeout.count(), system.render(e));
               });
  if (!engine_) fail("the coordinator has no engine");
  state_ = std::make_shared<State>();
  listener_ = system.spawn(listener_actor, state_, engine_);
}

Client::~Client() {
  if (listener_) caf::anon_send_exit(listener_, caf::exit_reason::user_shutdown);
  listener_ = nullptr;
  engine_ = nullptr;
  coordinator_ = nullptr;
  if (own_system_) {
    own_system_.reset();
    own_config_.reset();
  }
}

int64_t Client::submit(const SubmitRequest& request, TokenCallback on_token, FinishedCallback on_finished) {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->connection_error.empty()) fail("{}", state_->connection_error);
  }
  caf::scoped_actor self{*system_};
  int64_t id = -1;
  self->request(engine_, std::chrono::seconds(30), submit_atom::value, request, ListenerHandle{listener_})
      .receive(
          [&](int64_t assigned) { id = assigned; },
          [&](caf::error& e) { fail("the engine did not accept the request within 30 s ({})", system_->render(e)); });
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->connection_error.empty()) fail("{}", state_->connection_error);
    state_->handlers[id] =
        State::Handlers{std::make_shared<const TokenCallback>(std::move(on_token)), std::move(on_finished), false};
  }
  caf::anon_send(listener_, flush_atom::value, id);
  return id;
}

FinishedEvent Client::generate(const SubmitRequest& request, TokenCallback on_token,
                               std::chrono::milliseconds timeout) {
  auto result = std::make_shared<std::optional<FinishedEvent>>();
  auto done = [this, result](const FinishedEvent& e) {
    std::lock_guard lock(state_->mutex);
    *result = e;
  };
  int64_t id = submit(request, on_token, done);
  std::unique_lock lock(state_->mutex);
  // Waits for the on_finished callback itself: it runs after every token callback of the request.
  if (!state_->cv.wait_for(lock, timeout, [&] { return result->has_value(); })) {
    lock.unlock();
    cancel(id, std::chrono::seconds(5));
    return FinishedEvent{id,
                         FinishReason::Error,
                         fmt::format("no answer from the cluster within {} ms", timeout.count()),
                         request.prompt_ids,
                         {},
                         "",
                         0,
                         0};
  }
  FinishedEvent out = **result;
  state_->finished.erase(id);
  return out;
}

FinishedEvent Client::cancel(int64_t request_id, std::chrono::milliseconds timeout) {
  caf::send_as(listener_, engine_, cancel_atom::value, request_id);
  std::unique_lock lock(state_->mutex);
  if (!state_->cv.wait_for(lock, timeout, [&] { return state_->finished.count(request_id) > 0; }))
    return FinishedEvent{request_id,
                         FinishReason::Error,
                         fmt::format("no answer to cancel({}) within {} ms", request_id, timeout.count()),
                         {},
                         {},
                         "",
                         0,
                         0};
  FinishedEvent out = state_->finished[request_id];
  if (!state_->handlers.count(request_id)) state_->unclaimed.erase(request_id);  // nobody will claim it now
  return out;
}

void Client::forget(int64_t request_id) {
  std::lock_guard lock(state_->mutex);
  state_->finished.erase(request_id);
  if (!state_->handlers.count(request_id)) state_->unclaimed.erase(request_id);
}

ClusterStatus Client::status(std::chrono::milliseconds timeout) {
  caf::scoped_actor self{*system_};
  ClusterStatus out;
  self->request(coordinator_, timeout, status_atom::value)
      .receive([&](const ClusterStatus& s) { out = s; },
               [&](caf::error& e) {
                 fail("the coordinator did not report its status within {} ms ({})", timeout.count(),
                      system_->render(e));
               });
  return out;
}

Timeline Client::take_timeline(std::chrono::milliseconds timeout) {
  caf::scoped_actor self{*system_};
  Timeline out;
  self->request(coordinator_, timeout, timeline_atom::value)
      .receive([&](Timeline& t) { out = std::move(t); },
               [&](caf::error& e) {
                 fail("the coordinator did not send its timeline within {} ms ({})", timeout.count(),
                      system_->render(e));
               });
  return out;
}

ClusterStatus Client::wait_until_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ClusterStatus s = status();
    if (s.state == ClusterState::Ready) return s;
    if (s.state == ClusterState::Degraded) fail("the cluster is degraded: {}", s.detail);
    if (std::chrono::steady_clock::now() >= deadline)
      fail("the cluster was not ready within {} ms (state {}, {}/{} ranks joined, {} ready)", timeout.count(),
           to_string(s.state), s.ranks_joined, s.world_size, s.ranks_ready);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a remote status; no event to wait on
  }
}

}  // namespace troupe
