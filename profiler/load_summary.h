// The one-line load summary the record loop prints per interval:
//   load: cpu 87% (cpu0 99% cpu1 75%) runq 4 load1 2.31 psi cpu 12% io 0.3% mem 0% cs/s 3120
// cpu and psi are shares of the interval (psi: "some", from the PSI totals);
// runq is the run queue at interval end; "blocked N" follows it when tasks
// are in D state. Values that are absent or NaN are left out. With more than
// 16 CPUs only the 8 busiest are listed ("busiest cpu7 100% ...").
#pragma once

#include <string>

#include "profiler/load_snapshot.h"

namespace stackwatch::load {

std::string format_load_summary(const LoadSnapshot& snapshot);

}  // namespace stackwatch::load
