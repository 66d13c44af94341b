// stackwatch flamegraph: placeholder until its stage lands.
#include <CLI/CLI.hpp>

#include "profiler/commands.h"
#include "recording/error.h"

namespace stackwatch::cli {

void register_flamegraph_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("flamegraph", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("stackwatch flamegraph is not available in this build yet"); });
}

}  // namespace stackwatch::cli
