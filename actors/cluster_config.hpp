#pragma once
// ClusterConfig: the node config file (TOML) that describes a troupe cluster — its name and shared
// secret, the coordinator's address and its TLS credentials, the model, the parallel layout, the nodes with their
// ranks, scheduler limits and timeouts. Parsing is strict: a missing field, an unknown field or a value of the wrong
// type fails with the file and the key named. See examples/cluster/*.toml.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "actors/tls_credentials.hpp"
#include "comm/ucx_worker.hpp"

namespace troupe {

struct NodeSpec {
  std::string name;
  std::string host = "127.0.0.1";
  int ranks = 1;
  std::vector<std::string> devices;  // per rank: "cpu" or "cuda:N" (default cpu)
};

// [recovery]: what the cluster does when a rank fails (docs/fault-tolerance.md).
struct RecoveryOptions {
  bool enabled = true;  // false: a failure degrades the cluster and fails every live request
  // A micro-batch not answered within floor + factor x (the replica's recent time per token x its
  // tokens) has a hung rank.
  std::chrono::milliseconds step_deadline_floor{10000};
  double step_deadline_factor = 10;
  // A replica whose restarting nodes have not all joined and loaded again by then is given up: its
  // requests go to another replica, or fail naming the missing nodes.
  std::chrono::milliseconds rejoin_timeout{120000};
  // The head restarts a node process it started at most max_restarts times within restart_period
  // (an OTP supervisor's intensity and period); then it leaves it down. The coordinator recovers at
  // most max_recoveries times within restart_period; then it degrades the cluster.
  int max_restarts = 5;
  int max_recoveries = 10;
  std::chrono::milliseconds restart_period{60000};
};

struct ClusterConfig {
  std::filesystem::path source;  // the file it came from (relative paths resolve against it)

  std::string name;
  std::string secret;
  std::string coordinator_host = "127.0.0.1";
  int coordinator_port = 0;
  // [tls]: mutual TLS on the control plane (paths relative to the config). Without it the
  // coordinator must be on a loopback address, unless [cluster] insecure = true says otherwise.
  TlsCredentials tls;
  bool insecure = false;
  // [ucx] transports / devices (UCX_TLS / UCX_NET_DEVICES syntax); see ucx_resources().
  UcxResources ucx;

  std::filesystem::path model_path;
  std::string dtype = "auto";  // weights as stored
  // [model] quantize = "q8_0" | "q4_0": the float linear weights quantized at load (WeightStore::open).
  std::string quantize = "none";

  int tp = 1, pp = 1, dp = 1;
  int ep = 1;  // expert parallelism (MoE): 1, or tp (experts partitioned over each tp group)
  // Context parallelism: cp = ring_degree x ulysses_degree ranks per tp rank share each step's tokens
  // (model/context_parallel.hpp); they sit right after tp in the placement ("tp-cp-pp-dp").
  int cp = 1, ring_degree = 1, ulysses_degree = 1;
  std::string order = "tp-pp-dp";
  std::vector<int64_t> pp_partition;

  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 512;
  int64_t block_size = 16;
  int64_t kv_cache_bytes = 64ll << 20;  // per rank
  int64_t num_kv_blocks = 0;            // overrides kv_cache_bytes when set

  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds heartbeat_timeout{3000};
  std::chrono::milliseconds collective_timeout{20000};
  std::chrono::milliseconds startup_timeout{120000};

  int micro_batches = 0;  // micro-batches in flight per replica; 0 = pp

  RecoveryOptions recovery;

  // [experiment]: `stage` names the StageCompute kind the ranks run ("model", or one registered in
  // actors/stage_compute.hpp); its other keys are that kind's options, raw (strings as written, else TOML).
  std::string stage = "model";
  std::map<std::string, std::string> stage_options;
  bool record_timeline = false;

  std::vector<NodeSpec> nodes;

  int replica_size() const { return tp * cp * pp; }  // ranks of one data-parallel replica
  int world_size() const { return replica_size() * dp; }
  int total_ranks() const;
  // Global ranks of a node (nodes take consecutive ranks in file order).
  std::vector<int> ranks_of(const std::string& node) const;
  const NodeSpec& node(const std::string& name) const;
  // The UCX transports and devices rank `rank` may use: [ucx] where it sets them; otherwise, when
  // every node is on loopback, shared memory only ("sm,self": no socket at all), and else the one
  // interface that holds the rank's node's host address (no listener on the host's other
  // addresses). Throws troupe::Error when no interface of this host has that address.
  UcxResources ucx_resources(int rank) const;

  // What a client of this cluster presents: nothing without [tls]; else the cluster CA and the
  // client certificate `cert_file`/`key_file`, or when those are empty TROUPE_TLS_CERT and
  // TROUPE_TLS_KEY from the environment. Throws troupe::Error naming the missing credential.
  TlsCredentials client_credentials(std::filesystem::path cert_file, std::filesystem::path key_file) const;

  static ClusterConfig load(const std::filesystem::path& path);
  static ClusterConfig parse(const std::string& text, const std::filesystem::path& source);
};

// The global rank that member `index` of exchange `name` is, or -1 for no such member: "pp-R" is
// data-parallel replica R (its tp x cp x pp ranks, consecutive in the tp-cp-pp-dp order), "tp-F" the
// tp group whose first rank is F (tp ranks are consecutive), "ulysses-F" and "ring-F" the context-
// parallel sub-groups whose first rank is F (ulysses members tp apart, ring members ulysses x tp apart),
// "ep-F" the wide expert group (ep = tp x dp) of the stage whose first rank is F.
int bootstrap_exchange_member(const ClusterConfig& c, const std::string& name, int index, int size);

}  // namespace troupe
