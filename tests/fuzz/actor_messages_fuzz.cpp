// libFuzzer target: the control-plane messages as CAF deserialises them off the wire. The first
// byte picks one of the types make_actor_system_config() registers; caf::binary_deserializer reads
// it from the rest. A message that deserialises must serialise back to a prefix of the input and
// then go through what its receiver runs before using it (actors/message_checks.hpp and the logic
// classes behind the coordinator and the engine), each of which must accept it or refuse it with a
// reason or a troupe::Error:
//   JoinRequest    join bounds, then ClusterMembership::admit   (coordinator)
//   BootstrapBlob  bootstrap bounds                              (coordinator)
//   RankStatus     progress bounds, then rank_progress           (coordinator)
//   StepResult     step result bounds (rank, finite times), then ReplicaDispatcher::on_step_done (coordinator)
//   SubmitRequest  validate_submit, validate_request, ReplicaDispatcher::add   (engine, coordinator)
//   StepRequest    validate_step_request, the kernels' check against a cache, kv slots   (rank)
//   the events and statuses a client receives: their enums named (to_string)
//   the rest (replies, handles, timelines): deserialised and re-serialised only.
// Handles deserialise against an actor system without a proxy registry: a remote one is an error,
// a local one an unknown (null) actor. With TROUPE_FUZZ_WRITE_SEEDS=DIR set, the target writes one
// valid message of each type there (the seed corpus) and exits. Built and run by scripts/fuzz.sh.
#include <caf/all.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/cluster_config.hpp"
#include "actors/cluster_membership.hpp"
#include "actors/message_checks.hpp"
#include "actors/messages.hpp"
#include "actors/replica_dispatcher.hpp"
#include "kernels/error.hpp"
#include "kernels/paged_attention.hpp"

namespace {

using namespace troupe;

struct World {
  std::unique_ptr<caf::actor_system_config> config = make_actor_system_config();
  caf::actor_system system{*config};
  caf::scoped_execution_unit unit{&system};
  ClusterConfig cluster = ClusterConfig::parse(R"(
[cluster]
name = "fuzz"
secret = "s3cret"
coordinator = "127.0.0.1:0"
[model]
path = "/nonexistent"
[parallel]
tp = 2
pp = 2
[scheduler]
num_kv_blocks = 64
[[nodes]]
name = "a"
ranks = 2
[[nodes]]
name = "b"
ranks = 2
)",
                                               "fuzz.toml");
  ModelConfig model = ModelConfig::from_json_text(
      R"({"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
          "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512, "eos_token_id": 2})",
      "fuzz model");
  World() { unit.proxy_registry_ptr(nullptr); }
};

World& world() {
  static World* w = new World;  // never destroyed: CAF's statics may be gone by then
  return *w;
}

template <class T>
std::vector<char> save(const T& value) {
  std::vector<char> bytes;
  caf::binary_serializer sink{&world().unit, bytes};
  T copy = value;
  if (sink(copy)) __builtin_trap();
  return bytes;
}

template <class T>
std::optional<T> load(const char* data, size_t size) {
  caf::binary_deserializer source{&world().unit, data, size};
  T x;
  if (source(x)) return std::nullopt;  // an error: the message is dropped
  return x;
}

// CAF 0.17 cannot serialise a float that is not finite (pack754 halves infinity forever, and
// converts NaN to an integer): such a message may be received, but must never be sent on.
bool finite(double x) { return std::isfinite(x); }
bool serialisable(const SamplingParams& p) { return finite(p.temperature) && finite(p.top_p); }
bool serialisable(const SubmitRequest& r) { return finite(r.temperature) && finite(r.top_p); }
bool serialisable(const StepRequest& s) {
  return std::ranges::all_of(s.sampling, [](auto& p) { return serialisable(p); });
}
bool serialisable(const StepResult& r) {
  return finite(r.compute_seconds) && finite(r.collective_seconds) && finite(r.transfer_seconds) &&
         finite(r.recv_seconds) && finite(r.start_time) && finite(r.end_time);
}
bool serialisable(const Timeline& t) {
  return std::ranges::all_of(t.steps, [](auto& r) { return serialisable(r); });
}
bool serialisable(const ClusterStatus& s) { return std::ranges::all_of(s.rank_step_seconds, finite); }
template <class T>
bool serialisable(const T&) {
  return true;
}

// What deserialised serialises, and that reads back as the same message (the same bytes again:
// the input itself may be a non-canonical encoding).
template <class T>
std::optional<T> load_checked(const uint8_t* data, size_t size) {
  auto x = load<T>(reinterpret_cast<const char*>(data), size);
  if (!x || !serialisable(*x)) return x;
  const std::vector<char> bytes = save(*x);
  auto y = load<T>(bytes.data(), bytes.size());
  if (!y || save(*y) != bytes) __builtin_trap();
  return x;
}

void check_join(const JoinRequest& join) {
  if (!join_problem(join, size_t(world().cluster.world_size())).empty()) return;
  ClusterMembership membership(world().cluster);
  (void)membership.admit(join.cluster, join.secret, join.node, join.ranks, ClusterMembership::Clock::now());
}

void check_rank_status(const RankStatus& status) {
  const World& w = world();
  if (!rank_status_problem(status, size_t(w.cluster.world_size()), w.model.num_hidden_layers).empty()) return;
  ClusterMembership membership(w.cluster);
  auto [done, total] = membership.rank_progress(status.rank, status.done, status.total);
  if (done < 0 || done > total) __builtin_trap();
}

void check_step_result(const StepResult& result) {
  const World& w = world();
  if (!step_result_problem(result, size_t(w.cluster.world_size()), size_t(w.cluster.max_num_seqs)).empty()) return;
  if (!serialisable(result)) __builtin_trap();  // the coordinator sends its times on (timelines, statuses)
  ReplicaDispatcher dispatcher(w.model, w.cluster);
  GenerationRequest request;
  request.prompt_ids = {1, 5, 9};
  request.max_tokens = 3;
  dispatcher.add(7, request);
  if (dispatcher.schedule(0).size() != 1) __builtin_trap();
  try {
    for (int rank = 0; rank < dispatcher.ranks_per_replica(); ++rank) {
      StepResult answer = result;
      if (rank != result.rank) answer = StepResult{result.micro_batch, rank, {}, "", 0, 0, 0, 0, 0, 0};
      (void)dispatcher.on_step_done(answer);
    }
  } catch (const Error&) {
  }
}

void check_submit(const SubmitRequest& req) {
  const World& w = world();
  try {
    validate_submit(req, w.model);
    GenerationRequest g{req.prompt_ids, req.max_tokens, SamplingParams{req.temperature, req.top_p, req.top_k, req.seed},
                        req.stop_token_ids, req.ignore_eos};
    if (g.prompt_ids.empty()) g.prompt_ids.push_back(1);  // the engine tokenizes a text prompt
    validate_request(g, w.model);
    ReplicaDispatcher dispatcher(w.model, w.cluster);
    dispatcher.add(7, g);
    (void)dispatcher.schedule(0);
  } catch (const Error&) {
  }
}

void check_step_request(const StepRequest& step) {
  try {
    validate_step_request(step, world().cluster.block_size);
    validate_attention_metadata(step.batch.attention, step.batch.num_tokens(), 64, world().cluster.block_size);
    for (int64_t t = 0; t < step.batch.num_tokens(); ++t)
      if (kv_slot(step.batch.attention, t) >= 64 * world().cluster.block_size) __builtin_trap();
  } catch (const Error&) {
  }
}

template <class T>
void named(const T& value) {
  volatile const char* name = to_string(value);
  (void)name;
}

template <class T, class Check>
void run(const uint8_t* data, size_t size, Check check) {
  if (auto x = load_checked<T>(data, size)) check(*x);
}
template <class T>
void run(const uint8_t* data, size_t size) {
  (void)load_checked<T>(data, size);
}

template <class T>
void write_seed(const std::filesystem::path& dir, uint8_t type, const T& value, const std::string& name) {
  const std::vector<char> bytes = save(value);
  std::ofstream out(dir / name, std::ios::binary);
  out.put(char(type));
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

void write_seeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  SamplingParams sampling{0.7f, 0.9f, 40, 123};
  ForwardBatch batch;
  batch.token_ids = {1, 5, 9, 4};
  batch.attention.block_size = 16;
  batch.attention.positions = {0, 1, 2, 17};
  batch.attention.sequence_of_token = {0, 0, 0, 1};
  batch.attention.block_tables = {{3}, {0, 1}};
  batch.logit_rows = {2, 3};
  write_seed(dir, 0, JoinRequest{"fuzz", "s3cret", "a", "127.0.0.1", 4242, {0, 1}, {RankHandle{}, RankHandle{}}, {}},
             "join");
  write_seed(dir, 1, JoinReply{true, "", "0badc0de"}, "join-reply");
  write_seed(dir, 2, BootstrapBlob{"tp-0", 1, 2, std::string(64, '\x7f')}, "bootstrap");
  write_seed(dir, 3, BootstrapBlobs{{"a", "bb", "ccc", "dddd"}}, "bootstrap-blobs");
  write_seed(dir, 4, RankStatus{3, 2, 3, false, "", 0}, "rank-status");
  write_seed(dir, 4, RankStatus{1, 0, 0, true, "", 1 << 20}, "rank-status-ready");
  write_seed(dir, 5, StepRequest{0, batch, {7, 8}, {sampling, SamplingParams{}}, {5}}, "step-request");
  write_seed(dir, 6, StepResult{0, 2, {42}, "", 0.5, 0.1, 0.1, 0.05, 1.0, 1.5}, "step-result");
  write_seed(dir, 6, StepResult{0, 3, {}, "", 0.5, 0.1, 0.1, 0.05, 1.0, 1.5}, "step-result-other-rank");
  write_seed(dir, 7, Timeline{{StepResult{1, 0, {3}, "", 1, 0, 0, 0, 2, 3}}}, "timeline");
  SubmitRequest submit;
  submit.prompt = "Once upon a time";
  submit.prompt_ids = {1, 5, 9};
  submit.max_tokens = 32;
  submit.temperature = 0.8f;
  submit.top_p = 0.95f;
  submit.top_k = 50;
  submit.seed = 7;
  submit.stop_token_ids = {2};
  submit.stop = {"\n\n", "The end"};
  write_seed(dir, 8, submit, "submit");
  write_seed(dir, 9, TokenEvent{7, 42, "hello", true}, "token-event");
  write_seed(dir, 10, FinishedEvent{7, FinishReason::Length, "", {1, 5}, {42, 43}, "hi", 2, 2}, "finished-event");
  write_seed(dir, 11, SequenceUpdate{7, 42, true, FinishReason::Stop, ""}, "sequence-update");
  ClusterStatus status;
  status.state = ClusterState::Ready;
  status.world_size = status.ranks_joined = status.ranks_ready = 4;
  status.rank_steps = {1, 2, 3, 4};
  status.rank_step_seconds = {0.1, 0.2, 0.3, 0.4};
  write_seed(dir, 12, status, "cluster-status");
  write_seed(dir, 13, RankHandle{}, "rank-handle");
  write_seed(dir, 14, NodeHandle{}, "node-handle");
  write_seed(dir, 15, ListenerHandle{}, "listener-handle");
  write_seed(dir, 16, EngineHandle{}, "engine-handle");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("TROUPE_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* rest = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 17) {
    case 0:
      return run<JoinRequest>(rest, n, check_join), 0;
    case 1:
      return run<JoinReply>(rest, n), 0;
    case 2:
      return run<BootstrapBlob>(
                 rest, n,
                 [](const BootstrapBlob& b) { (void)bootstrap_problem(b, size_t(world().cluster.world_size())); }),
             0;
    case 3:
      return run<BootstrapBlobs>(rest, n), 0;
    case 4:
      return run<RankStatus>(rest, n, check_rank_status), 0;
    case 5:
      return run<StepRequest>(rest, n, check_step_request), 0;
    case 6:
      return run<StepResult>(rest, n, check_step_result), 0;
    case 7:
      return run<Timeline>(rest, n), 0;
    case 8:
      return run<SubmitRequest>(rest, n, check_submit), 0;
    case 9:
      return run<TokenEvent>(rest, n), 0;
    case 10:
      return run<FinishedEvent>(rest, n, [](const FinishedEvent& e) { named(e.reason); }), 0;
    case 11:
      return run<SequenceUpdate>(rest, n, [](const SequenceUpdate& u) { named(u.reason); }), 0;
    case 12:
      return run<ClusterStatus>(rest, n, [](const ClusterStatus& s) { named(s.state); }), 0;
    case 13:
      return run<RankHandle>(rest, n), 0;
    case 14:
      return run<NodeHandle>(rest, n), 0;
    case 15:
      return run<ListenerHandle>(rest, n), 0;
    default:
      return run<EngineHandle>(rest, n), 0;
  }
}
