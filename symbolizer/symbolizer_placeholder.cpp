// Placeholder until the symbolizer lands.
#include "symbolizer/symbolizer.h"
