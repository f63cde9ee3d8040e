// `troupe bench <what>`: benchmarks register themselves with TROUPE_BENCH (cli/command_registry.hpp).
#include "cli/command_registry.hpp"

namespace troupe::cli {

std::vector<CommandSpec>& bench_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}

namespace {
TROUPE_COMMAND("bench", "run a benchmark and print its figures (model, comm, tokenizer, ...)",
               [](CLI::App& cmd) -> std::function<int()> {
                 cmd.require_subcommand(1);
                 auto chosen = std::make_shared<std::function<int()>>();
                 for (auto& spec : bench_registry()) {
                   CLI::App* sub = cmd.add_subcommand(spec.name, spec.description);
                   auto run = spec.setup(*sub);
                   sub->callback([chosen, run] { *chosen = run; });
                 }
                 return [chosen] { return (*chosen)(); };
               });
}  // namespace

}  // namespace troupe::cli
