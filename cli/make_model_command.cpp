// `troupe make-model`: write an HF-layout checkpoint with random weights of a real shape.
#include <cstdio>

#include "cli/command_registry.hpp"
#include "cli/progress.hpp"
#include "model/model_presets.hpp"

namespace troupe::cli {
namespace {

TROUPE_COMMAND("make-model", "write a model folder with random weights of a preset's shape",
               [](CLI::App& cmd) -> std::function<int()> {
                 struct Options {
                   std::string preset, out, dtype = "bf16";
                   uint64_t seed = 0;
                 };
                 auto o = std::make_shared<Options>();
                 std::string presets;
                 for (const auto& n : model_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
                 cmd.add_option("--preset", o->preset, "one of: " + presets)->required();
                 cmd.add_option("--out", o->out, "output folder")->required();
                 cmd.add_option("--dtype", o->dtype, "bf16 or f32")->capture_default_str();
                 cmd.add_option("--seed", o->seed, "random seed")->capture_default_str();
                 return [o] {
                   Progress progress("writing tensors");
                   write_random_model(o->preset, o->out, parse_dtype(o->dtype), o->seed,
                                      [&](int64_t d, int64_t t) { progress.update(d, t); });
                   progress.finish();
                   std::printf("wrote %s (%s, %s)\n", o->out.c_str(), o->preset.c_str(), o->dtype.c_str());
                   return 0;
                 };
               });

}  // namespace
}  // namespace troupe::cli
