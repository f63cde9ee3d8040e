#include "actors/node_runtime.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>
#include "actors/parent_watch.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "actors/coordinator_actor.hpp"
#include "actors/engine_actor.hpp"
#include "actors/exit_deadline.hpp"
#include "actors/messages.hpp"
#include "actors/node_supervisor.hpp"
#include "actors/process_restart.hpp"
#include "actors/rank_actor.hpp"
#include "kernels/error.hpp"
#include "model/parallel_layout.hpp"

extern char** environ;

namespace troupe {

namespace {

void log_line(const std::string& who, const std::string& line) {
  std::fprintf(stderr, "[%s] %s\n", who.c_str(), line.c_str());
  std::fflush(stderr);
}

// A cleartext control plane on an address others can reach runs only because the config says
// insecure = true; say so at every start.
void warn_if_insecure(const ClusterConfig& config, const std::string& who) {
  if (!config.tls.enabled() && !is_loopback_host(config.coordinator_host))
    log_line(who, fmt::format("warning: [cluster] insecure = true: the control plane at {}:{} runs without TLS; "
                              "anyone who reaches it can join or drive the cluster",
                              config.coordinator_host, config.coordinator_port));
}

// Heartbeats to the coordinator; ends the node (and its ranks) on shutdown or when the
// coordinator goes away. Either way, in a node process (owns_process), the process's exit deadline
// is armed: the node ends within kTeardownGrace even if a rank is blocked mid-load. On `restart` a
// node process starts again in place (restart_this_process) and joins the new epoch; a node
// inside another process cannot, and stops.
NodeHandle::behavior_type node_actor(NodeHandle::pointer self, CoordinatorHandle coordinator, std::string name,
                                     std::chrono::milliseconds interval, std::vector<RankHandle> ranks,
                                     bool owns_process) {
  self->monitor(coordinator);
  auto stop_ranks = [self, ranks] {
    for (const auto& r : ranks) self->send_exit(r, caf::exit_reason::user_shutdown);
  };
  self->set_down_handler([self, name, stop_ranks, owns_process](caf::down_msg&) {
    log_line("node " + name, "the coordinator is gone; exiting");
    if (owns_process) arm_exit_deadline(kTeardownGrace, 1, "node " + name);
    stop_ranks();
    self->quit();
  });
  return {
      // the first tick comes from start_node once the join is accepted
      [self, coordinator, name, interval](tick_atom) {
        if (self->current_sender() != self->ctrl()) return;  // its own timer (start_node sends the first as it)
        self->send(coordinator, heartbeat_atom::value, name);
        self->delayed_send(self, interval, tick_atom::value);
      },
      [self, coordinator, name, stop_ranks, owns_process](shutdown_atom) {
        const auto& sender = self->current_sender();  // the coordinator, or this process (a signal)
        if (!sender || (sender->address() != coordinator.address() && sender->node() != self->node())) return;
        if (owns_process) arm_exit_deadline(kTeardownGrace, 0, "node " + name);
        stop_ranks();
        self->quit();
      },
      [self, coordinator, name, stop_ranks, owns_process](restart_atom, int64_t epoch) {
        const auto& sender = self->current_sender();
        if (!sender || sender->address() != coordinator.address()) return;
        log_line("node " + name, fmt::format("the coordinator restarts the cluster (epoch {})", epoch));
        if (owns_process) restart_this_process("node " + name);
        log_line("node " + name, "a node inside another process cannot restart: stopping it");
        stop_ranks();
        self->quit();
      },
  };
}

pid_t spawn_node_process(const ClusterLaunch& launch, const std::string& node) {
  std::vector<std::string> args = {"node", "--config", launch.config_file.string(), "--node", node};
  if (!launch.model_override.empty()) args.insert(args.end(), {"--model", launch.model_override.string()});
  return spawn_troupe(args, fmt::format("node '{}'", node));
}

}  // namespace

sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

pid_t spawn_troupe(std::vector<std::string> args, const std::string& what, bool end_with_this_process) {
  args.insert(args.begin(), "/proc/self/exe");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // This process may block SIGINT/SIGTERM to sigwait for them; the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  ChildEnvironment env;
  int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, &attr, argv.data(),
                       end_with_this_process ? env.pointers() : environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) fail("cannot start {}: {}", what, std::strerror(rc));
  return pid;
}

int run_cluster(const ClusterLaunch& launch) {
  ClusterConfig config = launch.config;
  if (!launch.model_override.empty()) config.model_path = launch.model_override;
  ModelConfig model = ModelConfig::load(config.model_path);
  // Before any process starts:
  validate_layout(model, config.tp, config.pp, config.pp_partition, config.ep, config.dp);
  validate_context_parallel(model, config.tp, config.cp, config.ring_degree, config.ulysses_degree);

  // Every thread (CAF's included) inherits this mask, so the signals wait for sigwait below.
  const sigset_t stop_signals = block_stop_signals();

  // The node processes this head starts, restarted when they die (actors/node_supervisor.hpp).
  // Declared before the actor system: the coordinator calls it, so it outlives every actor.
  NodeSupervisor supervisor([&launch](const std::string& node) { return spawn_node_process(launch, node); },
                            config.recovery, [](const std::string& line) { log_line("supervisor", line); });
  auto cfg = make_actor_system_config(config.tls);
  caf::actor_system system{*cfg};
  auto log = [verbose = launch.verbose](const std::string& line) {
    if (verbose) log_line("coordinator", line);
  };
  warn_if_insecure(config, "coordinator");
  auto [coordinator, engine] =
      spawn_head(system, config, model, log, [&supervisor](const std::string& node) { supervisor.kill(node); });
  uint16_t port = 0;
  try {
    port = publish_coordinator(coordinator, config.coordinator_host, config.coordinator_port, config.tls);
  } catch (const Error& e) {
    caf::anon_send_exit(coordinator, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(engine, caf::exit_reason::user_shutdown);
    fail("{}: {}", config.source.string(), e.what());
  }
  log(fmt::format("cluster '{}' coordinator listening on {}:{}{} (tp {} x pp {} x dp {}, model {})", config.name,
                  config.coordinator_host, port, config.tls.enabled() ? " with mutual TLS" : "", config.tp, config.pp,
                  config.dp, config.model_path.string()));

  if (launch.spawn_nodes)
    for (const auto& node : config.nodes) supervisor.start(node.name);

  int signal_number = 0;
  while (signal_number <= 0) {
    timespec tick{0, 100'000'000};  // the supervisor looks at its children ten times a second
    signal_number = sigtimedwait(&stop_signals, nullptr, &tick);
    supervisor.poll();
  }

  log(fmt::format("shutting down ({})", strsignal(signal_number)));
  // The nodes get kTeardownGrace to stop, then SIGKILL; the head itself ends shortly after.
  arm_exit_deadline(kTeardownGrace + std::chrono::seconds(2), 0, "head of cluster '" + config.name + "'");
  caf::send_as(engine, coordinator, shutdown_atom::value);  // from the head: the coordinator checks
  caf::anon_send_exit(engine, caf::exit_reason::user_shutdown);
  supervisor.stop(kTeardownGrace);
  if (config.tls.enabled())  // (caf/openssl/unpublish.hpp in 0.17.6 does not compile: ask its actor directly)
    caf::anon_send(system.openssl_manager().actor_handle(), caf::unpublish_atom::value,
                   caf::actor_cast<caf::actor_addr>(coordinator), port);
  else
    system.middleman().unpublish(coordinator, port);
  return 0;
}

StartedNode start_node(caf::actor_system& system, const CoordinatorHandle& coordinator, const ClusterConfig& config,
                       const std::string& node, bool owns_process) {
  const std::vector<int> ranks = config.ranks_of(node);
  std::vector<RankHandle> rank_actors;
  for (int r : ranks)
    rank_actors.push_back(system.spawn<caf::detached>(rank_actor, RankActorConfig{config, r, coordinator}));
  auto heart = system.spawn(node_actor, coordinator, node, config.heartbeat_interval, rank_actors, owns_process);
  JoinRequest join{config.name,
                   config.secret,
                   node,
                   config.node(node).host,
                   int32_t(::getpid()),
                   std::vector<int32_t>(ranks.begin(), ranks.end()),
                   rank_actors,
                   heart};
  JoinReply reply;
  {
    caf::scoped_actor self{system};
    self->request(coordinator, config.startup_timeout, join_atom::value, join)
        .receive([&](const JoinReply& r) { reply = r; },
                 [&](caf::error& e) {
                   reply = JoinReply{false, "the coordinator did not answer the join: " + system.render(e), ""};
                 });
  }
  if (!reply.accepted) {  // the ranks never started: stop them and the heartbeat actor now
    for (const auto& r : rank_actors) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(heart, caf::exit_reason::user_shutdown);
    return {reply, NodeHandle{}};
  }
  for (const auto& r : rank_actors) caf::send_as(heart, r, start_atom::value, reply.run_id);
  caf::send_as(heart, heart, tick_atom::value);  // heartbeats start now that the coordinator knows this node
  return {reply, heart};
}

HeadActors spawn_head(caf::actor_system& system, const ClusterConfig& config, const ModelConfig& model,
                      std::function<void(const std::string&)> log,
                      std::function<void(const std::string&)> on_node_lost) {
  HeadActors head;
  head.coordinator =
      system.spawn(coordinator_actor, CoordinatorConfig{config, model, std::move(log), false, std::move(on_node_lost)});
  head.engine = system.spawn(engine_actor, EngineConfig{model, config.model_path, head.coordinator});
  caf::send_as(head.engine, head.coordinator, engine_atom::value, head.engine);
  return head;
}

int run_node(const ClusterConfig& config_in, const std::string& node, const std::filesystem::path& model_override) {
  ClusterConfig config = config_in;
  if (!model_override.empty()) config.model_path = model_override;
  config.ranks_of(node);  // an unknown node name fails here, before connecting
  const std::string who = "node " + node;

  // SIGINT/SIGTERM: a watcher thread stops the node's actors (every thread, CAF's included, inherits
  // the blocked mask, so only the watcher receives them); the exit deadline bounds the rest.
  const sigset_t stop_signals = block_stop_signals();
  auto heart_slot = std::make_shared<std::pair<std::mutex, NodeHandle>>();
  std::thread([stop_signals, heart_slot, who] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log_line(who, fmt::format("{}: stopping", strsignal(signal_number)));
    std::lock_guard lock(heart_slot->first);
    arm_exit_deadline(heart_slot->second ? std::chrono::milliseconds(kTeardownGrace) : std::chrono::milliseconds(0),
                      128 + signal_number, who);
    if (heart_slot->second) caf::send_as(heart_slot->second, heart_slot->second, shutdown_atom::value);
  }).detach();

  auto cfg = make_actor_system_config(config.tls);
  caf::actor_system system{*cfg};
  warn_if_insecure(config, who);

  const CoordinatorHandle coordinator = connect_to_coordinator(system, config.coordinator_host, config.coordinator_port,
                                                               config.startup_timeout, config.tls);
  auto [reply, heart] = start_node(system, coordinator, config, node, true);
  {
    std::lock_guard lock(heart_slot->first);
    heart_slot->second = heart;
  }
  const int exit_code = reply.accepted ? 0 : 1;
  if (!reply.accepted) {
    log_line(who, "refused: " + reply.reason);
    arm_exit_deadline(kTeardownGrace, exit_code, who);
  }
  system.await_all_actors_done();
  // Every actor of this node is done: its shared memory was unlinked once attached, its UCX state
  // went with the rank actors, its sockets close with the process. CAF 0.17's actor_system
  // destructor, which would run next, can wait for ever for a finished detached rank actor that the
  // head's proxies still reference (seen in about half the shutdowns after a served request), so a
  // node process ends here instead of running it.
  std::fflush(nullptr);
  std::_Exit(exit_code);
}

}  // namespace troupe
