#pragma once
// make_cluster_keys: the files mutual TLS needs (`troupe keys --out DIR`), made with OpenSSL —
//   ca.pem / ca.key          the cluster CA (keep ca.key off the cluster: only signing needs it)
//   node.pem / node.key      the certificate every node and the head present (server + client use)
//   NAME.pem / NAME.key      one client certificate per name (client use only), default "client"
// EC P-256 keys, SHA-256 signatures, random 128-bit serials; keys are written mode 0600 and never
// overwritten. A DIR that already holds ca.pem and ca.key keeps its CA and gains only the missing
// certificates, so `troupe keys --out DIR --client alice` adds a client later.
#include <filesystem>
#include <string>
#include <vector>

namespace troupe {

struct ClusterKeyOptions {
  std::filesystem::path out;
  std::vector<std::string> clients = {"client"};
  int days = 825;  // validity of node and client certificates (the CA gets ten years)
};

// Returns one line per file: "wrote PATH" or "kept PATH". Throws troupe::Error on any failure.
std::vector<std::string> make_cluster_keys(const ClusterKeyOptions& options);

}  // namespace troupe
