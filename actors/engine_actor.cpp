#include "actors/engine_actor.hpp"

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "actors/message_checks.hpp"
#include "actors/messages.hpp"
#include "kernels/error.hpp"
#include "model/tokenizer/streaming_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe {

namespace {

struct Pending {
  ListenerHandle listener;
  std::vector<int32_t> prompt_ids, ids;
  std::string text;
  std::vector<std::string> stop;
  std::unique_ptr<StreamingDetokenizer> stream;
};

struct EngineState {
  EngineConfig config;
  std::optional<Tokenizer> tokenizer;
  std::map<int64_t, Pending> pending;
  std::set<caf::actor_addr> monitored;          // listeners monitored (once each: a monitor per request would pile up)
  std::mt19937_64 ids{std::random_device{}()};  // request ids are unguessable: a client cannot aim at another's

  int64_t new_id() {
    for (;;)
      if (int64_t id = int64_t(ids() >> 2); id > 0 && !pending.count(id)) return id;
  }
};

void finish(EngineHandle::pointer self, EngineState& s, int64_t id, FinishReason reason, const std::string& error) {
  auto it = s.pending.find(id);
  if (it == s.pending.end()) return;
  Pending& p = it->second;
  if (p.stream) p.text += p.stream->finish();
  FinishedEvent e{id, reason, error, p.prompt_ids, p.ids, p.text, int64_t(p.prompt_ids.size()), int64_t(p.ids.size())};
  self->send(p.listener, std::move(e));
  s.pending.erase(it);
}

// Appends the token's text; true when a stop string now appears (text cut before it).
bool append_text(Pending& p, int32_t token, std::string& piece) {
  if (!p.stream) return false;
  piece = p.stream->feed(token);
  const size_t before = p.text.size();
  p.text += piece;
  for (const auto& stop : p.stop) {
    size_t at = p.text.find(stop, before >= stop.size() ? before - stop.size() + 1 : 0);
    if (!stop.empty() && at != std::string::npos) {
      p.text.resize(at);
      piece = at > before ? p.text.substr(before) : "";
      return true;
    }
  }
  return false;
}

}  // namespace

EngineHandle::behavior_type engine_actor(EngineHandle::pointer self, EngineConfig config) {
  auto s = std::make_shared<EngineState>();
  s->config = std::move(config);
  s->tokenizer = Tokenizer::from_model(s->config.model_dir);
  self->monitor(s->config.coordinator);
  self->set_down_handler([self, s](caf::down_msg& down) {
    if (down.source == s->config.coordinator.address()) {  // nobody will answer: end every request now
      std::vector<int64_t> ids;
      for (const auto& [id, p] : s->pending) ids.push_back(id);
      for (int64_t id : ids)
        finish(self, *s, id, FinishReason::Error,
               "the cluster's coordinator is gone (" + self->system().render(down.reason) + ")");
      self->quit(down.reason);
      return;
    }
    s->monitored.erase(down.source);
    std::vector<int64_t> gone;  // a client went away: free its requests
    for (auto& [id, p] : s->pending)
      if (p.listener.address() == down.source) gone.push_back(id);
    for (int64_t id : gone) {
      self->send(s->config.coordinator, cancel_atom::value, id);
      s->pending.erase(id);
    }
  });
  return {
      [self, s](submit_atom, SubmitRequest& req, const ListenerHandle& listener) -> int64_t {
        const int64_t id = s->new_id();
        if (s->monitored.insert(listener.address()).second) self->monitor(listener);
        Pending p;
        p.listener = listener;
        p.stop = req.stop;
        s->pending.emplace(id, std::move(p));
        Pending& pending = s->pending.at(id);
        try {
          validate_submit(req, s->config.model);  // bounds first: nothing unbounded is tokenized or stored
          if (req.prompt_ids.empty()) {
            if (req.prompt.empty()) fail("give a prompt (text) or prompt_ids");
            if (!s->tokenizer)
              fail("a text prompt needs a tokenizer, but {} has no tokenizer.json; send prompt_ids",
                   s->config.model_dir.string());
            for (int t : s->tokenizer->encode(req.prompt, true)) req.prompt_ids.push_back(t);
          }
          pending.prompt_ids = req.prompt_ids;
          validate_request(GenerationRequest{req.prompt_ids, req.max_tokens,
                                             SamplingParams{req.temperature, req.top_p, req.top_k, req.seed},
                                             req.stop_token_ids, req.ignore_eos},
                           s->config.model);
        } catch (const Error& e) {
          // Answer after the id reply so the client knows the id first.
          self->send(self, seq_event_atom::value, SequenceUpdate{id, -1, true, FinishReason::Error, e.what()});
          return id;
        }
        if (s->tokenizer) pending.stream = std::make_unique<StreamingDetokenizer>(*s->tokenizer, true);
        self->send(s->config.coordinator, submit_atom::value, id, req);
        return id;
      },
      [self, s](cancel_atom, int64_t id) {
        // Only the client that submitted a request may cancel it; to anyone else it does not exist.
        auto it = s->pending.find(id);
        const auto& sender = self->current_sender();
        if (it == s->pending.end() || !sender || sender->address() != it->second.listener.address()) {
          auto listener = caf::actor_cast<ListenerHandle>(sender);
          if (listener)
            self->send(
                listener,
                FinishedEvent{id, FinishReason::Error, fmt::format("unknown request id {}", id), {}, {}, "", 0, 0});
          return;
        }
        self->send(s->config.coordinator, cancel_atom::value, id);
      },
      [self, s](seq_event_atom, const SequenceUpdate& u) {
        const auto& sender = self->current_sender();  // tokens come from the coordinator (errors from here)
        if (!sender || (sender->address() != s->config.coordinator.address() && sender->address() != self->address()))
          return;
        auto it = s->pending.find(u.request_id);
        if (it == s->pending.end()) return;
        Pending& p = it->second;
        if (u.token >= 0) {
          p.ids.push_back(u.token);
          std::string piece;
          bool stopped = append_text(p, u.token, piece);
          self->send(p.listener, TokenEvent{u.request_id, u.token, piece, bool(s->tokenizer)});
          if (stopped && !u.finished) {
            self->send(s->config.coordinator, cancel_atom::value, u.request_id);
            p.stream.reset();
            finish(self, *s, u.request_id, FinishReason::Stop, "");
            return;
          }
        }
        if (u.finished) finish(self, *s, u.request_id, u.reason, u.error);
      },
      [self, s](status_atom) { return self->delegate(s->config.coordinator, status_atom::value); },
  };
}

}  // namespace troupe
