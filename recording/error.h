// The one exception type for set-up failures a user can act on (bad flag,
// cannot load, cannot attach, malformed file). main() prints what() on one
// line and exits non-zero. Per-sample failures are counted, never thrown.
#pragma once

#include <stdexcept>
#include <string>

namespace stackwatch {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stackwatch
