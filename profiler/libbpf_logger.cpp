// libbpf's log output: shown only with STACKWATCH_DEBUG=1 (see bpf_handles.h).
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "profiler/bpf_handles.h"

namespace stackwatch::profiler {

static int print_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  static const bool debug = [] {
    const char* v = std::getenv("STACKWATCH_DEBUG");
    return v && *v && std::string(v) != "0";
  }();
  if (!debug && level != LIBBPF_WARN) return 0;
  if (!debug) return 0;
  return std::vfprintf(stderr, format, args);
}

void install_libbpf_logger() { libbpf_set_print(print_libbpf); }

}  // namespace stackwatch::profiler
