// The symbolize subcommand alone, with the error handling of
// profiler/main.cpp, so its test does not depend on every other stage.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "profiler/commands.h"
#include "recording/error.h"

int main(int argc, char** argv) {
  CLI::App app{"stackwatch"};
  app.require_subcommand(1);
  stackwatch::cli::register_symbolize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const stackwatch::Error& e) {
    std::fprintf(stderr, "stackwatch: %s\n", e.what());
    return 1;
  }
  return 0;
}
