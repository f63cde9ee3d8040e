#pragma once
// The two process roles of a cluster.
//  - run_cluster: the head process — coordinator + engine, published at the config's coordinator
//    address; with spawn_nodes it also starts every node of the config on this host as child
//    processes (`troupe node ...`), a real distributed launch over loopback, and restarts them when
//    they die (actors/node_supervisor.hpp). Serves until SIGINT/SIGTERM, then shuts the nodes down
//    (SIGKILL after kTeardownGrace) and returns.
//  - run_node: one node process — connects to the coordinator, spawns a RankActor per rank, joins
//    (the secret is checked), heartbeats, and ends the process when the coordinator says so, goes
//    away or refuses the join, or on SIGINT/SIGTERM (exit status 0, 1, 1, 128+signal); when the
//    coordinator restarts the cluster (a new epoch) the process starts again in place and rejoins.
// Every exit path is bounded: the process's exit deadline (actors/exit_deadline.hpp) ends a teardown
// that overruns kTeardownGrace.
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include <functional>

#include "actors/cluster_config.hpp"
#include "actors/messages.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct ClusterLaunch {
  ClusterConfig config;
  std::filesystem::path config_file;     // passed on to the node processes
  std::filesystem::path model_override;  // empty: the config's model path
  bool spawn_nodes = true;
  bool verbose = true;
};

// Returns the process exit code.
int run_cluster(const ClusterLaunch& launch);

// Blocks SIGINT and SIGTERM in the calling thread (and every thread it starts afterwards, CAF's
// included) so that one thread can sigwait for them; returns that set.
sigset_t block_stop_signals();

// Starts this program (`troupe`) again with `args` and every signal unblocked; `what` names it in
// the error when it cannot start. The caller owns the child (waits for it). With
// `end_with_this_process`, the child gets SIGTERM if this process ends first (parent_watch.hpp;
// call from the main thread).
pid_t spawn_troupe(std::vector<std::string> args, const std::string& what, bool end_with_this_process = false);

// The head's actors: the coordinator and the engine clients talk to.
struct HeadActors {
  CoordinatorHandle coordinator;
  EngineHandle engine;
};
// `on_node_lost`: see CoordinatorConfig (the head kills a hung node process it started).
HeadActors spawn_head(caf::actor_system& system, const ClusterConfig& config, const ModelConfig& model,
                      std::function<void(const std::string&)> log,
                      std::function<void(const std::string&)> on_node_lost = {});
// A started node: the coordinator's answer and the node's heartbeat actor (which stops the node's
// ranks on shutdown_atom). When the join was refused, the ranks and the heartbeat actor are already
// stopped.
struct StartedNode {
  JoinReply reply;
  NodeHandle heart;
};
// Spawns a node's rank actors (and its heartbeat actor) in `system`, joins them to `coordinator`
// and, when accepted, starts them loading. `owns_process`: this node is the whole process (`troupe
// node`), so its shutdown arms the process's exit deadline (actors/exit_deadline.hpp).
StartedNode start_node(caf::actor_system& system, const CoordinatorHandle& coordinator, const ClusterConfig& config,
                       const std::string& node, bool owns_process = false);
// Ends the process (std::_Exit) once the node's actors are done; returns nothing but throws a
// troupe::Error when the node cannot start (unknown node name, no coordinator within the timeout).
int run_node(const ClusterConfig& config, const std::string& node, const std::filesystem::path& model_override);

}  // namespace troupe
