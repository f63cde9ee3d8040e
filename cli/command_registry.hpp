#pragma once
// Each `troupe <command>` lives in its own cli/<command>_command.cpp and registers itself here with
// a static TROUPE_COMMAND(...) so that adding a command touches no other file.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace troupe::cli {

struct CommandSpec {
  std::string name;
  std::string description;
  // Adds the command's options to `command`; returns the action run when it is chosen.
  std::function<std::function<int()>(CLI::App& command)> setup;
};

std::vector<CommandSpec>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

// `troupe bench <name>` subcommands (bench/bench_command.cpp), registered with TROUPE_BENCH.
std::vector<CommandSpec>& bench_registry();
struct BenchRegistrar {
  explicit BenchRegistrar(CommandSpec spec) { bench_registry().push_back(std::move(spec)); }
};

// Parses "1,2,3" into ids; throws troupe::Error naming the bad item.
std::vector<int> parse_id_list(const std::string& text, const std::string& what);

}  // namespace troupe::cli

#define TROUPE_CLI_CONCAT2(a, b) a##b
#define TROUPE_CLI_CONCAT(a, b) TROUPE_CLI_CONCAT2(a, b)
#define TROUPE_COMMAND(...)                                                 \
  static ::troupe::cli::CommandRegistrar TROUPE_CLI_CONCAT(troupe_command_, \
                                                           __LINE__)(::troupe::cli::CommandSpec{__VA_ARGS__})
#define TROUPE_BENCH(...)                                               \
  static ::troupe::cli::BenchRegistrar TROUPE_CLI_CONCAT(troupe_bench_, \
                                                         __LINE__)(::troupe::cli::CommandSpec{__VA_ARGS__})
