// The "simulated" StageCompute kind, for pipeline experiments: a stage whose compute is a cost
// model (the actors, scheduling and UCX transfers stay real; no weights are loaded). A step waits
// layer_fraction * (fixed_ms + per_token_ms * tokens), sleeping or spinning, then hands on
// activations of the real shape, and "samples" a made-up non-eos token. Selected by the node
// config's [experiment] stage = "simulated" (options fixed_ms, per_token_ms, wait = "sleep" |
// "busy"); registers itself when the bench library is linked (the troupe executable links it whole).
#include <chrono>
#include <thread>

#include "actors/stage_compute.hpp"
#include "kernels/error.hpp"

namespace troupe {
namespace {

class SimulatedStage : public StageCompute {
 public:
  SimulatedStage(const ModelConfig& model, const ParallelLayout& layout, const std::map<std::string, std::string>& o)
      : hidden_size_(model.hidden_size), vocab_size_(model.vocab_size) {
    for (const auto& [key, value] : o)
      if (key != "fixed_ms" && key != "per_token_ms" && key != "wait")
        fail("[experiment] {} is not an option of the simulated stage (fixed_ms, per_token_ms, wait)", key);
    if (o.count("fixed_ms")) fixed_ms_ = std::stod(o.at("fixed_ms"));
    if (o.count("per_token_ms")) per_token_ms_ = std::stod(o.at("per_token_ms"));
    const std::string wait = o.count("wait") ? o.at("wait") : "sleep";
    if (wait != "sleep" && wait != "busy") fail("[experiment] wait must be \"sleep\" or \"busy\", got '{}'", wait);
    busy_wait_ = wait == "busy";
    if (fixed_ms_ < 0 || per_token_ms_ < 0) fail("[experiment] costs must be >= 0");
    auto [first, end] = layout.layer_range(model.num_hidden_layers);
    layer_fraction_ = double(end - first) / double(model.num_hidden_layers);
  }

  Tensor forward(const ForwardBatch& batch, StageActivations& act) override {
    const double ms = layer_fraction_ * (fixed_ms_ + per_token_ms_ * double(batch.num_tokens()));
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
    // Sleeping leaves the core free (the modelled device is what is busy); the last stretch is spun
    // because a sleep overshoots by the kernel's timer slack, which would bias short stages.
    if (!busy_wait_) std::this_thread::sleep_until(until - std::chrono::microseconds(300));
    while (std::chrono::steady_clock::now() < until) {
    }
    if (!act.hidden_states.defined()) {
      act.hidden_states = Tensor::zeros({batch.num_tokens(), hidden_size_}, DType::F32);
      act.residual = Tensor::zeros({batch.num_tokens(), hidden_size_}, DType::F32);
    }
    return Tensor();
  }

  int32_t sample(const Tensor&, int64_t, int64_t sequence, int64_t position, const SamplingParams&) override {
    // Any non-eos token will do (unsigned: request ids are random 62-bit numbers).
    return int32_t(3 + (uint64_t(sequence) * 31 + uint64_t(position)) % uint64_t(vocab_size_ - 3));
  }

 private:
  double fixed_ms_ = 2.0, per_token_ms_ = 0.05;  // per whole-model step, split over the stages by layers
  bool busy_wait_ = false;                       // spin instead of sleeping (models a busy device)
  double layer_fraction_ = 1.0;
  int64_t hidden_size_ = 0, vocab_size_ = 0;
};

const bool registered = [] {
  stage_compute_kinds()["simulated"] = [](const auto& model, const auto& layout, const auto& options) {
    return std::make_unique<SimulatedStage>(model, layout, options);
  };
  return true;
}();

}  // namespace
}  // namespace troupe
