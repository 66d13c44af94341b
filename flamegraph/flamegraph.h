// flamegraph: folded stacks in and out, SVG flame graphs (plain and
// differential). Reads and writes files; knows nothing of BPF, /proc or
// symbolization.
#pragma once

#include "flamegraph/folded.h"
