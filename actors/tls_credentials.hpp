#pragma once
// TlsCredentials: what a troupe process presents on the control plane when the cluster uses
// mutual TLS — the cluster CA it trusts and its own certificate and private key (PEM files, made by
// `troupe keys`, see actors/cluster_keys.hpp). Nodes take them from the config's [tls] table;
// clients take the CA from there and their own client certificate from --tls-cert/--tls-key or
// TROUPE_TLS_CERT/TROUPE_TLS_KEY. With credentials, make_actor_system_config() loads CAF's OpenSSL
// module and publish/connect go through it: both ends must show a certificate the cluster CA
// signed, or the handshake fails and no message is read. Plain values; no ownership.
#include <filesystem>
#include <string>

namespace troupe {

struct TlsCredentials {
  std::filesystem::path ca_file;    // the cluster CA certificate: peers must be signed by it
  std::filesystem::path cert_file;  // this process's certificate (node or client)
  std::filesystem::path key_file;   // its private key: must be mode 0600 (as ssh asks of keys)
  bool enabled() const { return !ca_file.empty(); }
};

// Throws troupe::Error naming `who` unless all three files are readable regular files and the key
// is not accessible to group or others. Called before CAF reads them (its errors say less).
void check_tls_credentials(const TlsCredentials& tls, const std::string& who);

// True for 127.0.0.0/8, ::1 and "localhost": an address nothing off this host can reach.
bool is_loopback_host(const std::string& host);

}  // namespace troupe
