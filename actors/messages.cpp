#include "actors/messages.hpp"

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>

#include <thread>

#include "actors/openssl_error_queue.hpp"
#include "kernels/error.hpp"

namespace troupe {

std::unique_ptr<caf::actor_system_config> make_actor_system_config(const TlsCredentials& tls) {
  auto config = std::make_unique<caf::actor_system_config>();
  config->load<caf::io::middleman>();
  if (tls.enabled()) {
    check_tls_credentials(tls, "TLS credentials");
    keep_openssl_error_queue_fix();
    config->load<caf::openssl::manager>();
    config->openssl_cafile = tls.ca_file.string();
    config->openssl_certificate = tls.cert_file.string();
    config->openssl_key = tls.key_file.string();
  }
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

uint16_t publish_coordinator(const CoordinatorHandle& coordinator, const std::string& host, int port,
                             const TlsCredentials& tls) {
  caf::actor_system& system = coordinator->home_system();
  auto published = tls.enabled() ? caf::openssl::publish(coordinator, uint16_t(port), host.c_str(), true)
                                 : system.middleman().publish(coordinator, uint16_t(port), host.c_str(), true);
  if (!published)
    fail("cannot listen on {}:{}{} ({})", host, port, tls.enabled() ? " with TLS" : "",
         system.render(published.error()));
  return *published;
}

CoordinatorHandle connect_to_coordinator(caf::actor_system& system, const std::string& host, int port,
                                         std::chrono::milliseconds timeout, const TlsCredentials& tls) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // CAF's remote_actor() waits without a deadline (for ever on a peer that accepts the TCP
    // connection and then says nothing, as a TLS server does to a cleartext client): ask the
    // middleman actor ourselves, bounded by what is left of `timeout`.
    const auto left =
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    auto connect = caf::make_function_view(
        tls.enabled() ? system.openssl_manager().actor_handle() : system.middleman().actor_handle(),
        caf::duration{left});
    auto reply = connect(caf::connect_atom_v, host, uint16_t(port));
    caf::error error;
    if (!reply)
      error = reply.error();
    else if (!std::get<1>(*reply))
      error = caf::make_error(caf::sec::no_actor_published_at_port, port);
    else if (!system.assignable<CoordinatorHandle>(std::get<2>(*reply)))
      error = caf::make_error(caf::sec::unexpected_actor_messaging_interface);
    else
      return caf::actor_cast<CoordinatorHandle>(std::move(std::get<1>(*reply)));
    if (std::chrono::steady_clock::now() >= deadline)
      fail("no coordinator at {}:{} within {} ms ({}){}", host, port, timeout.count(), system.render(error),
           tls.enabled() ? fmt::format("; over TLS with certificate {}: it must be signed by the cluster's CA, and "
                                       "the coordinator's by {}",
                                       tls.cert_file.string(), tls.ca_file.string())
                         : "; connected without TLS: a cluster with [tls] refuses a peer without a certificate");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace troupe
