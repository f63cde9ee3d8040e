// `troupe convert --to gguf`: a Hugging Face checkpoint folder as one GGUF file (llama.cpp's format),
// in F32, F16, BF16, Q8_0 or Q4_0 (model/gguf_checkpoint.hpp says what is written how).
#include <cstdio>

#include "cli/command_registry.hpp"
#include "cli/progress.hpp"
#include "kernels/error.hpp"
#include "model/gguf_checkpoint.hpp"

namespace troupe::cli {
namespace {

TROUPE_COMMAND(
    "convert", "write a model folder as a GGUF file (F32, F16, BF16, Q8_0 or Q4_0), as llama.cpp reads it",
    [](CLI::App& cmd) -> std::function<int()> {
      struct Options {
        std::string to = "gguf", model, out, type = "f32";
      };
      auto o = std::make_shared<Options>();
      cmd.add_option("--to", o->to, "output format")->check(CLI::IsMember({"gguf"}))->capture_default_str();
      cmd.add_option("--model", o->model, "Hugging Face model folder (config.json + safetensors)")->required();
      cmd.add_option("--out", o->out, "the .gguf file to write")->required();
      cmd.add_option("--type", o->type, "tensor type: f32, f16, bf16, q8_0 or q4_0")->capture_default_str();
      return [o] {
        const auto type = parse_ggml_type(o->type);
        if (!type || *type == GgmlType::Q4_K || *type == GgmlType::Q6_K)
          fail("--type {}: expected f32, f16, bf16, q8_0 or q4_0", o->type);
        Progress progress("converting tensors");
        const size_t n = write_gguf_checkpoint(o->model, o->out, *type, [&](size_t done, size_t total) {
          progress.update(int64_t(done), int64_t(total));
        });
        progress.finish();
        std::printf("wrote %s (%zu tensors, %s)\n", o->out.c_str(), n, o->type.c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace troupe::cli
