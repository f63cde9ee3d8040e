#pragma once
// The request flags `troupe generate` and `troupe submit` share: the prompt (text or ids), how
// many tokens, sampling, and output format; and the client-certificate flags of the commands that
// connect to a running cluster as clients (`troupe submit`, `troupe serve --attach`).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace troupe::cli {

struct RequestOptions {
  std::string prompt, prompt_ids;
  int64_t max_tokens = 64;
  float temperature = 0.0f, top_p = 1.0f;
  int top_k = 0;
  uint64_t seed = 0;
  bool json = false, ignore_eos = false;
};

inline void add_request_options(CLI::App& cmd, RequestOptions& o) {
  cmd.add_option("--prompt", o.prompt, "prompt text (tokenized with the model folder's tokenizer)");
  cmd.add_option("--prompt-ids", o.prompt_ids, "prompt token ids, comma-separated");
  cmd.add_option("--max-tokens", o.max_tokens, "most tokens to generate")->capture_default_str();
  cmd.add_option("--temperature", o.temperature, "0 = greedy")->capture_default_str();
  cmd.add_option("--top-p", o.top_p, "nucleus sampling mass")->capture_default_str();
  cmd.add_option("--top-k", o.top_k, "keep the k most likely tokens (0 = all)")->capture_default_str();
  cmd.add_option("--seed", o.seed, "sampling seed")->capture_default_str();
  cmd.add_flag("--json", o.json, "print one JSON object {prompt_ids, ids, text}");
  cmd.add_flag("--ignore-eos", o.ignore_eos, "keep generating past end-of-sequence tokens");
}

// The client certificate for a cluster with [tls] (ClusterConfig::client_credentials reads the
// environment when these are empty).
struct ClientCertificateOptions {
  std::string tls_cert, tls_key;
};

inline void add_client_certificate_options(CLI::App& cmd, ClientCertificateOptions& o) {
  cmd.add_option("--tls-cert", o.tls_cert,
                 "client certificate for a cluster with [tls] (default $TROUPE_TLS_CERT; `troupe keys` makes one)");
  cmd.add_option("--tls-key", o.tls_key, "its private key, mode 0600 (default $TROUPE_TLS_KEY)");
}

}  // namespace troupe::cli
