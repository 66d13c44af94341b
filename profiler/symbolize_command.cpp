// stackwatch symbolize: placeholder until its stage lands.
#include <CLI/CLI.hpp>

#include "profiler/commands.h"
#include "recording/error.h"

namespace stackwatch::cli {

void register_symbolize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("symbolize", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("stackwatch symbolize is not available in this build yet"); });
}

}  // namespace stackwatch::cli
