#pragma once
// The OpenAI API's wire format, as OpenAI and vLLM define it: request bodies of /v1/completions,
// /v1/chat/completions, /tokenize and /detokenize parsed and checked into troupe's SubmitRequest,
// and the JSON of responses, stream chunks and errors.
//
// Contract. Parsing never trusts the client: every field it reads is type-checked and bounded
// before use; a bad one throws ApiError (status 400, the field named in `param` and the message;
// 404 for an unknown model). Unknown fields are ignored (as vLLM does); known fields this server
// does not support (n > 1, logprobs, echo, penalties) are refused by name. A text prompt is
// tokenized here (so usage counts are known before generation); a chat request is rendered with
// the model's chat template first (a model without one gets a 400 that says so).
//
// Ownership/lifetime. Plain functions and value types. ModelInfo points at the tokenizer and chat
// template its owner (OpenAIServer) keeps alive; both are only read, from any thread.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"

namespace troupe {
class Tokenizer;
class ChatTemplate;
}  // namespace troupe

namespace troupe::serve {

using Json = nlohmann::ordered_json;

// An error the client gets as {"error": {"message", "type", "param", "code"}} with `status`.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {})
      : std::runtime_error(std::move(message)), status(status), param(std::move(param)) {}
  int status;
  std::string param;  // the offending field, "" for none
};

// The JSON body of an error response.
std::string error_json(int status, std::string_view message, std::string_view param = {});

struct ModelInfo {
  std::string served_name;
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  const Tokenizer* tokenizer = nullptr;  // null: text prompts and /tokenize are refused
  const ChatTemplate* chat = nullptr;    // null: chat requests are refused
  std::string chat_missing_reason;       // why there is no chat template (for the 400)
};

enum class Endpoint { Completion, Chat };

struct ApiRequest {
  Endpoint endpoint = Endpoint::Completion;
  SubmitRequest submit;  // prompt_ids always filled (text prompts are tokenized here)
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool return_token_ids = false;  // vLLM's extension: token ids in choices
  std::string rendered_prompt;    // chat: the template's output
};

// Parse and check a request body. `default_seed` is used when the client sends none.
ApiRequest parse_completion_request(std::string_view body, const ModelInfo& model, uint64_t default_seed);
ApiRequest parse_chat_request(std::string_view body, const ModelInfo& model, uint64_t default_seed);

// /tokenize ({"prompt"} or {"messages"}) and /detokenize ({"tokens"}): the whole response body.
std::string tokenize_response(std::string_view body, const ModelInfo& model);
std::string detokenize_response(std::string_view body, const ModelInfo& model);
// /v1/models.
std::string models_response(const ModelInfo& model, int64_t created);

// "stop", "length", "abort" (a cancelled request), "" for none.
const char* finish_reason_name(FinishReason reason);

// What every response and chunk of one request carries.
struct ResponseHeader {
  Endpoint endpoint = Endpoint::Completion;
  std::string id;  // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

// A whole (non-streaming) response for a finished request.
std::string final_response(const ResponseHeader& header, const FinishedEvent& finished, bool return_token_ids);

// Server-sent events, each "data: {...}\n\n". The chat stream opens with a role chunk; every
// token is a chunk (text may be empty while a character is incomplete); the last content chunk
// carries the finish reason; with include_usage every chunk has "usage": null and a final chunk
// with no choices carries the usage; "data: [DONE]\n\n" ends the stream.
std::string role_chunk(const ResponseHeader& header, bool include_usage);
std::string token_chunk(const ResponseHeader& header, std::string_view text, const std::vector<int32_t>* token_ids,
                        const char* finish_reason, bool include_usage);
// token_chunk(header, text, ids, nullptr, include_usage) for the hot path (one per token): the
// fixed parts are formatted once per request, the text is escaped straight into the event.
class TokenChunkFormatter {
 public:
  TokenChunkFormatter(const ResponseHeader& header, bool include_usage);
  std::string format(std::string_view text, const int32_t* token_id) const;

 private:
  std::string head_, tail_, ids_tail_;
};
std::string usage_chunk(const ResponseHeader& header, int64_t prompt_tokens, int64_t completion_tokens);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";
// An error in the middle of a stream (vLLM's form: an event with the error object).
std::string error_event(int status, std::string_view message);

}  // namespace troupe::serve
