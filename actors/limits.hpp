#pragma once
// Bounds on what a peer or a client may send in a control-plane message (actors/message_checks.hpp
// checks them) and on the names and secrets a node config may give (which a join must carry).
#include <cstddef>
#include <cstdint>

namespace troupe {

namespace limits {
// Join and bootstrap (the coordinator).
constexpr size_t kMaxName = 256;           // cluster, node, host and exchange names
constexpr size_t kMaxBlobBytes = 1 << 20;  // a secret, one rank's bootstrap blob
// Submit (the engine), as the OpenAI front end bounds them (serve/openai_protocol.cpp).
constexpr size_t kMaxPromptBytes = 16 << 20;  // a text prompt, before tokenizing
constexpr int64_t kMaxTokens = INT32_MAX;     // max_tokens (generation ends at the context anyway)
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 1024;  // each stop string
constexpr size_t kMaxStopTokenIds = 256;
constexpr float kMaxTemperature = 100.0f;
// Step results (the coordinator).
constexpr double kMaxSeconds = 1e12;  // any time or duration a rank reports
}  // namespace limits

}  // namespace troupe
