// stackwatch: entry point. Parses the command line, runs one subcommand,
// and turns set-up failures into one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "profiler/commands.h"
#include "recording/error.h"

int main(int argc, char** argv) {
  CLI::App app{"stackwatch: stack-sampling profiler and anomaly localizer for Linux"};
  app.set_version_flag("--version", "stackwatch 0.1.0");
  app.require_subcommand(1);
  stackwatch::cli::register_record_command(app);
  stackwatch::cli::register_symbolize_command(app);
  stackwatch::cli::register_detect_command(app);
  stackwatch::cli::register_localize_command(app);
  stackwatch::cli::register_flamegraph_command(app);
#ifdef STACKWATCH_HAVE_PROBE_COMMAND  // BPF builds only (profiler/record.cmake)
  stackwatch::cli::register_probe_command(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const stackwatch::Error& e) {
    std::fprintf(stderr, "stackwatch: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stackwatch: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
