// stackwatch record, in builds without BPF (-DSTACKWATCH_BPF=OFF).
#include <CLI/CLI.hpp>

#include "profiler/commands.h"
#include "recording/error.h"

namespace stackwatch::cli {

void register_record_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("record", "(this build has no BPF support)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("this stackwatch was built without BPF (-DSTACKWATCH_BPF=OFF)"); });
}

}  // namespace stackwatch::cli
