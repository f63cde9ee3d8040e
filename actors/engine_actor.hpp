#pragma once
// EngineActor: the front end clients talk to. `submit(SubmitRequest, listener)` answers with a
// request id at once, validates and tokenizes the prompt (the model folder's tokenizer), hands the
// ids to the coordinator, and streams TokenEvents then exactly one FinishedEvent to the listener
// (reason stop / length / abort / error with usage counts). Bad input never reaches the ranks: it
// is answered with an error event and the cluster keeps serving. Stop strings are matched here on
// the detokenized text. `cancel(id)` aborts at once (an unknown id is answered with an error
// event). The engine monitors the coordinator: if it dies, every request ends with an error and the
// engine stops (so clients, which monitor the engine, learn it at once).
#include <caf/all.hpp>

#include <filesystem>

#include "actors/messages.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct EngineConfig {
  ModelConfig model;
  std::filesystem::path model_dir;  // its tokenizer.json, when present, serves text prompts
  CoordinatorHandle coordinator;
};

EngineHandle::behavior_type engine_actor(EngineHandle::pointer self, EngineConfig config);

}  // namespace troupe
