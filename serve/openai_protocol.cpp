#include "serve/openai_protocol.hpp"

#include <fmt/format.h>

#include <limits>

#include "kernels/error.hpp"
#include "model/chat_template/chat_template.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe::serve {

namespace {

constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 1024;
constexpr size_t kMaxMessages = 4096;

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, message, param); }

const char* type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// The field, or null when absent or JSON null (OpenAI treats null as "not given").
const Json* field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const Json& body, const char* name, bool fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean, not {}", name, type_name(*v)));
  return v->get<bool>();
}

int64_t get_int(const Json& body, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) bad(name, fmt::format("'{}' must be an integer, not {}", name, type_name(*v)));
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    bad(name, fmt::format("'{}' must be at most {}", name, hi));
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

double get_number(const Json& body, const char* name, double lo, double hi, double fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number, not {}", name, type_name(*v)));
  double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

Json parse_body(std::string_view body) {
  Json out;
  try {
    out = Json::parse(body);
  } catch (const Json::exception& e) {
    bad("", fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!out.is_object()) bad("", fmt::format("the request body must be a JSON object, not {}", type_name(out)));
  return out;
}

std::vector<int32_t> token_ids(const Json& v, const char* name, const ModelInfo& model) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& x : v) {
    if (!x.is_number_integer())
      bad(name, fmt::format("'{}' must hold token ids (integers), found {}", name, type_name(x)));
    int64_t id =
        x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(model.vocab_size) ? model.vocab_size : x.get<int64_t>();
    if (id < 0 || id >= model.vocab_size)
      bad(name, fmt::format("token id {} in '{}' is outside the vocabulary [0, {})", x.dump(), name, model.vocab_size));
    ids.push_back(int32_t(id));
  }
  return ids;
}

const Tokenizer& need_tokenizer(const ModelInfo& model, const char* param) {
  if (!model.tokenizer)
    bad(param, fmt::format("model '{}' has no tokenizer (tokenizer.json); send token ids or start the server "
                           "with --tokenizer",
                           model.served_name));
  return *model.tokenizer;
}

std::vector<int32_t> encode(const ModelInfo& model, const std::string& text, bool add_special, const char* param) {
  std::vector<int32_t> ids;
  for (int id : need_tokenizer(model, param).encode(text, add_special)) ids.push_back(id);
  return ids;
}

void check_model(const Json& body, const ModelInfo& model) {
  const Json* v = field(body, "model");
  if (!v) return;  // vLLM: the served model by default
  if (!v->is_string()) bad("model", fmt::format("'model' must be a string, not {}", type_name(*v)));
  if (v->get<std::string>() != model.served_name)
    throw ApiError(404, fmt::format("The model `{}` does not exist.", v->get<std::string>()), "model");
}

// Fields this server knows but does not implement: refused by name unless they ask for nothing.
void refuse_unsupported(const Json& body, Endpoint endpoint) {
  if (get_int(body, "n", 1, 1 << 20, 1) != 1) bad("n", "'n' > 1 is not supported; send separate requests");
  if (get_int(body, "best_of", 1, 1 << 20, 1) != 1) bad("best_of", "'best_of' > 1 is not supported");
  if (get_bool(body, "echo", false)) bad("echo", "'echo' is not supported");
  for (const char* name : {"presence_penalty", "frequency_penalty", "repetition_penalty"}) {
    double neutral = std::string_view(name) == "repetition_penalty" ? 1.0 : 0.0;
    if (get_number(body, name, -2.0, 2.0 + 1e9, neutral) != neutral)
      bad(name, fmt::format("'{}' is not supported", name));
  }
  if (const Json* v = field(body, "logprobs")) {
    if (endpoint == Endpoint::Chat ? !v->is_boolean() : !v->is_number_integer())
      bad("logprobs", fmt::format("'logprobs' must be {}, not {}",
                                  endpoint == Endpoint::Chat ? "a boolean" : "an integer", type_name(*v)));
    if (endpoint == Endpoint::Chat ? v->get<bool>() : true) bad("logprobs", "'logprobs' is not supported");
  }
  if (const Json* v = field(body, "logit_bias"))
    if (!v->is_object() || !v->empty()) bad("logit_bias", "'logit_bias' is not supported");
  if (const Json* v = field(body, "suffix"))
    if (!v->is_string() || !v->get<std::string>().empty()) bad("suffix", "'suffix' is not supported");
}

// Sampling, limits and stream flags common to both endpoints; the prompt is set by the caller.
void parse_common(const Json& body, const ModelInfo& model, uint64_t default_seed, ApiRequest& out) {
  check_model(body, model);
  refuse_unsupported(body, out.endpoint);
  SubmitRequest& r = out.submit;
  r.temperature = float(get_number(body, "temperature", 0.0, 100.0, 1.0));
  r.top_p = float(get_number(body, "top_p", 0.0, 1.0, 1.0));
  if (r.top_p <= 0.0f) bad("top_p", "'top_p' must be in (0, 1]");
  int64_t top_k = get_int(body, "top_k", -1, std::numeric_limits<int32_t>::max(), 0);
  r.top_k = int32_t(top_k < 0 ? 0 : top_k);
  if (const Json* v = field(body, "seed")) {
    if (!v->is_number_integer()) bad("seed", fmt::format("'seed' must be an integer, not {}", type_name(*v)));
    r.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
  } else {
    r.seed = default_seed;
  }
  r.ignore_eos = get_bool(body, "ignore_eos", false);
  if (const Json* v = field(body, "stop")) {
    std::vector<std::string> stops;
    if (v->is_string()) {
      stops.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > kMaxStopStrings) bad("stop", fmt::format("'stop' holds at most {} strings", kMaxStopStrings));
      for (const auto& s : *v) {
        if (!s.is_string()) bad("stop", fmt::format("'stop' must hold strings, found {}", type_name(s)));
        stops.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", fmt::format("'stop' must be a string or an array of strings, not {}", type_name(*v)));
    }
    for (const auto& s : stops) {
      if (s.empty()) bad("stop", "'stop' strings must not be empty");
      if (s.size() > kMaxStopBytes) bad("stop", fmt::format("'stop' strings are at most {} bytes", kMaxStopBytes));
    }
    r.stop = std::move(stops);
  }
  if (const Json* v = field(body, "stop_token_ids")) {
    if (!v->is_array() || v->size() > 256) bad("stop_token_ids", "'stop_token_ids' must be an array of token ids");
    r.stop_token_ids = token_ids(*v, "stop_token_ids", model);
  }
  out.stream = get_bool(body, "stream", false);
  if (const Json* v = field(body, "stream_options")) {
    if (!v->is_object())
      bad("stream_options", fmt::format("'stream_options' must be an object, not {}", type_name(*v)));
    if (!out.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    out.include_usage = get_bool(*v, "include_usage", false);
  }
  out.return_token_ids = get_bool(body, "return_token_ids", false);

  for (int32_t id : r.prompt_ids)  // a --tokenizer that does not fit the model
    if (id >= model.vocab_size)
      bad(out.endpoint == Endpoint::Chat ? "messages" : "prompt",
          fmt::format("the tokenizer produced token id {}, outside the model's vocabulary of {}", id,
                      model.vocab_size));
  const int64_t prompt_len = int64_t(r.prompt_ids.size());
  if (prompt_len == 0) bad(out.endpoint == Endpoint::Chat ? "messages" : "prompt", "the prompt is empty");
  if (prompt_len >= model.max_model_len)
    bad(out.endpoint == Endpoint::Chat ? "messages" : "prompt",
        fmt::format("This model's maximum context length is {} tokens, but the prompt has {} tokens",
                    model.max_model_len, prompt_len));
  const char* max_name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const int64_t fallback = out.endpoint == Endpoint::Chat ? model.max_model_len - prompt_len : 16;
  r.max_tokens = get_int(body, max_name, 1, std::numeric_limits<int32_t>::max(), fallback);
  if (prompt_len + r.max_tokens > model.max_model_len)
    bad(max_name, fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                              "({} in the prompt, {} in the completion). Please reduce the length of the prompt or "
                              "'{}'.",
                              model.max_model_len, prompt_len + r.max_tokens, prompt_len, r.max_tokens, max_name));
}

// A message's content as the template sees it: a string (text parts joined by newlines, as vLLM).
Json message_content(const Json& content, size_t index) {
  const std::string param = fmt::format("messages[{}].content", index);
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) bad(param, fmt::format("'{}' must be a string or an array of parts", param));
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad(param,
          fmt::format("'{}' parts must be {{\"type\": \"text\", \"text\": string}} (only text is supported)", param));
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Json checked_messages(const Json& body) {
  const Json* v = field(body, "messages");
  if (!v) bad("messages", "'messages' is required");
  if (!v->is_array()) bad("messages", fmt::format("'messages' must be an array, not {}", type_name(*v)));
  if (v->empty()) bad("messages", "'messages' must not be empty");
  if (v->size() > kMaxMessages) bad("messages", fmt::format("'messages' holds at most {} messages", kMaxMessages));
  Json out = Json::array();
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& m = (*v)[i];
    if (!m.is_object()) bad(fmt::format("messages[{}]", i), fmt::format("messages[{}] must be an object", i));
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      bad(fmt::format("messages[{}].role", i), fmt::format("messages[{}].role must be a string", i));
    Json copy = m;
    if (m.contains("content")) copy["content"] = message_content(m["content"], i);
    out.push_back(std::move(copy));
  }
  return out;
}

std::string render_chat(const Json& body, const ModelInfo& model) {
  if (!model.chat)
    bad("messages", fmt::format("model '{}' has no chat template ({}); start the server with --chat-template FILE, "
                                "or use /v1/completions",
                                model.served_name, model.chat_missing_reason));
  Json messages = checked_messages(body);
  Json tools = nullptr;
  if (const Json* v = field(body, "tools")) {
    if (!v->is_array()) bad("tools", fmt::format("'tools' must be an array, not {}", type_name(*v)));
    tools = *v;
  }
  Json variables = Json::object();
  if (const Json* v = field(body, "chat_template_kwargs")) {
    if (!v->is_object())
      bad("chat_template_kwargs", fmt::format("'chat_template_kwargs' must be an object, not {}", type_name(*v)));
    variables = *v;
  }
  const bool add_generation_prompt = get_bool(body, "add_generation_prompt", true);
  try {
    return model.chat->render(messages, tools, add_generation_prompt, variables);
  } catch (const Error& e) {
    bad("messages", e.what());  // the template's own message (raise_exception) or where it failed
  }
}

}  // namespace

std::string error_json(int status, std::string_view message, std::string_view param) {
  const char* type = status == 401   ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 429 ? "rate_limit_error"
                     : status == 503 ? "service_unavailable"
                     : status >= 500 ? "internal_server_error"
                                     : "invalid_request_error";
  Json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}};
  if (!param.empty()) error["param"] = param;
  return Json{{"error", std::move(error)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ApiRequest parse_completion_request(std::string_view text, const ModelInfo& model, uint64_t default_seed) {
  Json body = parse_body(text);
  ApiRequest out;
  out.endpoint = Endpoint::Completion;
  const Json* prompt = field(body, "prompt");
  if (!prompt) bad("prompt", "'prompt' is required");
  const bool add_special = get_bool(body, "add_special_tokens", true);
  // A batch of one ([["..."]] or [[ids]]) is the prompt itself; larger batches are refused.
  const Json* p = prompt;
  if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (p->size() != 1) bad("prompt", "a batch of several prompts is not supported; send one request per prompt");
    p = &(*p)[0];
  }
  if (p->is_string()) {
    out.submit.prompt_ids = encode(model, p->get<std::string>(), add_special, "prompt");
  } else if (p->is_array()) {
    out.submit.prompt_ids = token_ids(*p, "prompt", model);
  } else {
    bad("prompt", fmt::format("'prompt' must be a string or an array of token ids, not {}", type_name(*prompt)));
  }
  parse_common(body, model, default_seed, out);
  return out;
}

ApiRequest parse_chat_request(std::string_view text, const ModelInfo& model, uint64_t default_seed) {
  Json body = parse_body(text);
  ApiRequest out;
  out.endpoint = Endpoint::Chat;
  check_model(body, model);
  out.rendered_prompt = render_chat(body, model);
  out.submit.prompt_ids = encode(model, out.rendered_prompt, get_bool(body, "add_special_tokens", false), "messages");
  parse_common(body, model, default_seed, out);
  return out;
}

std::string tokenize_response(std::string_view text, const ModelInfo& model) {
  Json body = parse_body(text);
  check_model(body, model);
  std::vector<int32_t> ids;
  if (field(body, "messages")) {
    std::string rendered = render_chat(body, model);
    ids = encode(model, rendered, get_bool(body, "add_special_tokens", false), "messages");
  } else {
    const Json* prompt = field(body, "prompt");
    if (!prompt) bad("prompt", "give 'prompt' (a string) or 'messages'");
    if (!prompt->is_string()) bad("prompt", fmt::format("'prompt' must be a string, not {}", type_name(*prompt)));
    ids = encode(model, prompt->get<std::string>(), get_bool(body, "add_special_tokens", true), "prompt");
  }
  return Json{{"count", ids.size()}, {"max_model_len", model.max_model_len}, {"tokens", ids}}.dump();
}

std::string detokenize_response(std::string_view text, const ModelInfo& model) {
  Json body = parse_body(text);
  check_model(body, model);
  const Json* tokens = field(body, "tokens");
  if (!tokens) bad("tokens", "'tokens' is required");
  if (!tokens->is_array())
    bad("tokens", fmt::format("'tokens' must be an array of token ids, not {}", type_name(*tokens)));
  std::vector<int32_t> ids = token_ids(*tokens, "tokens", model);
  std::vector<int> as_int(ids.begin(), ids.end());
  std::string decoded = need_tokenizer(model, "tokens").decode(as_int, true);
  return Json{{"prompt", decoded}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string models_response(const ModelInfo& model, int64_t created) {
  Json card = {{"id", model.served_name},
               {"object", "model"},
               {"created", created},
               {"owned_by", "troupe"},
               {"root", model.served_name},
               {"parent", nullptr},
               {"max_model_len", model.max_model_len}};
  return Json{{"object", "list"}, {"data", Json::array({card})}}.dump();
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Abort:
      return "abort";
    case FinishReason::Error:
      return "error";
    default:
      return "";
  }
}

namespace {

Json envelope(const ResponseHeader& h, bool chunk) {
  const char* object =
      h.endpoint == Endpoint::Chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return Json{{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

Json usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"total_tokens", prompt_tokens + completion_tokens},
              {"completion_tokens", completion_tokens}};
}

std::string event(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

}  // namespace

std::string final_response(const ResponseHeader& h, const FinishedEvent& f, bool return_token_ids) {
  Json out = envelope(h, false);
  Json choice = {{"index", 0}};
  if (h.endpoint == Endpoint::Chat)
    choice["message"] = {{"role", "assistant"}, {"content", f.text}};
  else
    choice["text"] = f.text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason_name(f.reason);
  if (return_token_ids) {
    choice["prompt_token_ids"] = f.prompt_ids;
    choice["token_ids"] = f.ids;
  }
  out["choices"] = Json::array({choice});
  out["usage"] = usage(f.prompt_tokens, f.completion_tokens);
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string role_chunk(const ResponseHeader& h, bool include_usage) {
  Json out = envelope(h, true);
  out["choices"] = Json::array({{{"index", 0},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}}});
  if (include_usage) out["usage"] = nullptr;
  return event(out);
}

std::string token_chunk(const ResponseHeader& h, std::string_view text, const std::vector<int32_t>* token_ids,
                        const char* finish_reason, bool include_usage) {
  Json out = envelope(h, true);
  Json choice = {{"index", 0}};
  if (h.endpoint == Endpoint::Chat) {
    choice["delta"] = Json::object();
    if (!text.empty() || !finish_reason) choice["delta"]["content"] = text;
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason ? Json(finish_reason) : Json(nullptr);
  if (token_ids) choice["token_ids"] = *token_ids;
  out["choices"] = Json::array({choice});
  if (include_usage) out["usage"] = nullptr;
  return event(out);
}

namespace {

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

// `s` as a JSON string literal (quotes included), as nlohmann would print it.
void append_json_string(std::string& out, std::string_view s) {
  if (!valid_utf8(s)) {
    out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
    return;
  }
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += ch;
    }
  }
  out += '"';
}

}  // namespace

TokenChunkFormatter::TokenChunkFormatter(const ResponseHeader& h, bool include_usage) {
  // Split the JSON of a chunk with a marker text at the text's place (and the token ids' place).
  const std::string marker = "\x01troupe-text\x01";
  std::string with_ids = token_chunk(h, marker, nullptr, nullptr, include_usage);
  std::string quoted = Json(marker).dump();
  size_t at = with_ids.find(quoted);
  head_ = with_ids.substr(0, at);
  tail_ = with_ids.substr(at + quoted.size());
  std::vector<int32_t> one{0};
  std::string ids = token_chunk(h, marker, &one, nullptr, include_usage);
  at = ids.find(quoted);
  ids_tail_ = ids.substr(at + quoted.size());
  ids_tail_ = ids_tail_.substr(0, ids_tail_.find("[0]") + 1);  // up to and with the '['
}

std::string TokenChunkFormatter::format(std::string_view text, const int32_t* token_id) const {
  std::string out;
  out.reserve(head_.size() + tail_.size() + text.size() + 32);
  out += head_;
  append_json_string(out, text);
  if (token_id) {
    // ids_tail_ ends in "token_ids":[ ; then the id and the end of the choice and the chunk.
    out += ids_tail_;
    out += std::to_string(*token_id);
    out += ']';
    out.append(tail_, tail_.rfind("}]"), std::string::npos);
  } else {
    out += tail_;
  }
  return out;
}

std::string usage_chunk(const ResponseHeader& h, int64_t prompt_tokens, int64_t completion_tokens) {
  Json out = envelope(h, true);
  out["choices"] = Json::array();
  out["usage"] = usage(prompt_tokens, completion_tokens);
  return event(out);
}

std::string error_event(int status, std::string_view message) {
  return "data: " + error_json(status, message) + "\n\n";
}

}  // namespace troupe::serve
