// stackwatch detect: placeholder until its stage lands.
#include <CLI/CLI.hpp>

#include "profiler/commands.h"
#include "recording/error.h"

namespace stackwatch::cli {

void register_detect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("detect", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("stackwatch detect is not available in this build yet"); });
}

}  // namespace stackwatch::cli
