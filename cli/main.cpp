// The `troupe` command: subcommands register themselves (cli/command_registry.hpp).
#include <algorithm>
#include <cstdio>

#include "actors/parent_watch.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"

namespace troupe::cli {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}

std::vector<int> parse_id_list(const std::string& text, const std::string& what) {
  std::vector<int> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) fail("{}: empty item in '{}' (expected comma-separated integers)", what, text);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > 0x7fffffff) fail("{}: '{}' is not a non-negative integer id", what, item);
    ids.push_back(int(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

}  // namespace troupe::cli

int main(int argc, char** argv) {
  troupe::exit_with_parent_if_asked();  // before anything: a child that must end with its parent
  using namespace troupe::cli;
  CLI::App app{"troupe: a distributed LLM inference runtime"};
  app.require_subcommand(1);
  auto& specs = command_registry();
  std::sort(specs.begin(), specs.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::function<int()> action;
  for (auto& spec : specs) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    auto run = spec.setup(*sub);
    sub->callback([&action, run] { action = run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const troupe::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  try {
    return action ? action() : 0;
  } catch (const std::exception& e) {  // troupe::Error included
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
