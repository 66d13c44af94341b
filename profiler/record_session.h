// One run of `stackwatch record`: loads and attaches the BPF programs, then
// every interval drains them into an Interval, symbolizes it, prints it and
// rewrites the outputs; stops on Ctrl-C, SIGTERM, SIGHUP, the end of -d, the
// exit of the COMMAND or of every -p process, always writing what it has.
#pragma once

#include "profiler/record_options.h"

namespace stackwatch::profiler {

// Returns the exit status for main (0 on every orderly stop).
int run_record(RecordOptions options);

}  // namespace stackwatch::profiler
