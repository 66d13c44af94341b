// The subcommands of the stackwatch binary. Each register_* adds one CLI11
// subcommand whose callback runs it; bad input throws stackwatch::Error
// (main prints it on one line and exits 1), and a command that wants another
// exit status throws CLI::RuntimeError(status).
#pragma once

namespace CLI {
class App;
}

namespace stackwatch::cli {

void register_record_command(CLI::App& app);
void register_symbolize_command(CLI::App& app);
void register_detect_command(CLI::App& app);
void register_localize_command(CLI::App& app);
void register_flamegraph_command(CLI::App& app);
void register_probe_command(CLI::App& app);

}  // namespace stackwatch::cli
