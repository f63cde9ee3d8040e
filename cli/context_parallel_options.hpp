#pragma once
// The context-parallel flags of the commands that start ranks themselves (`troupe generate`,
// `troupe serve --model`): --cp ranks per tp rank share each step's tokens, split into ring attention
// (--ring-degree) and Ulysses (--ulysses-degree) as [parallel] cp / ring_degree / ulysses_degree are.
#include <CLI/CLI.hpp>

#include "model/parallel_layout.hpp"

namespace troupe::cli {

struct ContextParallelOptions {
  int cp = 1;
  int ring_degree = 0, ulysses_degree = 0;  // 0: not given (context_parallel_degrees)
  std::pair<int, int> degrees() const { return context_parallel_degrees(cp, ring_degree, ulysses_degree); }
};

inline void add_context_parallel_options(CLI::App& cmd, ContextParallelOptions& o) {
  cmd.add_option("--cp", o.cp, "context-parallel ranks per tp rank: a step's tokens are split over them")
      ->capture_default_str();
  cmd.add_option("--ring-degree", o.ring_degree, "ring-attention part of --cp (default: --cp / --ulysses-degree)");
  cmd.add_option("--ulysses-degree", o.ulysses_degree, "Ulysses part of --cp (default: --cp / --ring-degree, else 1)");
}

}  // namespace troupe::cli
