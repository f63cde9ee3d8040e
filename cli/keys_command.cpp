// `troupe keys`: the cluster CA and the node and client certificates for mutual TLS.
//   troupe keys --out DIR                  ca, node and one client ("client") certificate
//   troupe keys --out DIR --client alice   adds alice.pem / alice.key signed by DIR's CA
// Prints what it wrote and the [tls] table for the node config.
#include <cstdio>

#include "actors/cluster_keys.hpp"
#include "cli/command_registry.hpp"

namespace troupe::cli {
namespace {

int run_keys(const ClusterKeyOptions& o) {
  for (const auto& line : make_cluster_keys(o)) std::printf("%s\n", line.c_str());
  const auto dir = std::filesystem::absolute(o.out).lexically_normal();
  std::printf(
      "\nAdd to the node config (every host needs ca.pem, node.pem and node.key; keep ca.key off the cluster):\n"
      "[tls]\nca_file = \"%s\"\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
      "Clients: troupe submit --config FILE --tls-cert %s --tls-key %s\n",
      (dir / "ca.pem").c_str(), (dir / "node.pem").c_str(), (dir / "node.key").c_str(),
      (dir / (o.clients.front() + ".pem")).c_str(), (dir / (o.clients.front() + ".key")).c_str());
  return 0;
}

TROUPE_COMMAND(
    "keys", "make the cluster CA and node and client certificates for mutual TLS ([tls] in the config)",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<ClusterKeyOptions>();
      cmd.add_option("--out", o->out, "directory for the PEM files (created mode 0700)")->required();
      cmd.add_option("--client", o->clients, "client certificate names (repeatable)")->capture_default_str();
      cmd.add_option("--days", o->days, "validity of the node and client certificates")->capture_default_str();
      return [o] { return run_keys(*o); };
    });

}  // namespace
}  // namespace troupe::cli
