#include "actors/messages.hpp"

#include <caf/io/middleman.hpp>

#include <thread>

#include "kernels/error.hpp"

namespace troupe {

std::unique_ptr<caf::actor_system_config> make_actor_system_config() {
  auto config = std::make_unique<caf::actor_system_config>();
  config->load<caf::io::middleman>();
  config->set("logger.verbosity", caf::atom("quiet"));
  // An idle scheduler worker polls 100 times, then sleeps on its condition variable until work
  // arrives (CAF's default polls 500 more times with 50 us sleeps in between: 20,000 wake-ups a
  // second per idle worker, CPU that the ranks' kernels and the HTTP threads need).
  config->set("work-stealing.moderate-poll-attempts", 0);
  config->add_message_type<JoinRequest>("troupe.JoinRequest");
  config->add_message_type<JoinReply>("troupe.JoinReply");
  config->add_message_type<BootstrapBlob>("troupe.BootstrapBlob");
  config->add_message_type<BootstrapBlobs>("troupe.BootstrapBlobs");
  config->add_message_type<RankStatus>("troupe.RankStatus");
  config->add_message_type<StepRequest>("troupe.StepRequest");
  config->add_message_type<StepResult>("troupe.StepResult");
  config->add_message_type<Timeline>("troupe.Timeline");
  config->add_message_type<SubmitRequest>("troupe.SubmitRequest");
  config->add_message_type<TokenEvent>("troupe.TokenEvent");
  config->add_message_type<FinishedEvent>("troupe.FinishedEvent");
  config->add_message_type<SequenceUpdate>("troupe.SequenceUpdate");
  config->add_message_type<ClusterStatus>("troupe.ClusterStatus");
  config->add_message_type<RankHandle>("troupe.RankHandle");
  config->add_message_type<NodeHandle>("troupe.NodeHandle");
  config->add_message_type<ListenerHandle>("troupe.ListenerHandle");
  config->add_message_type<EngineHandle>("troupe.EngineHandle");
  return config;
}

CoordinatorHandle connect_to_coordinator(caf::actor_system& system, const std::string& host, int port,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto coordinator = system.middleman().remote_actor<CoordinatorHandle>(host, uint16_t(port));
    if (coordinator) return *coordinator;
    if (std::chrono::steady_clock::now() >= deadline)
      fail("no coordinator at {}:{} within {} ms ({})", host, port, timeout.count(),
           system.render(coordinator.error()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace troupe
