// Fuzz target: series CSV files (`stackwatch detect FILE.csv`,
// localize/series_csv.h): the header, the timestamps, the rows. Errors are
// stackwatch::Error naming the line; anything else is a bug.
#include <cstdint>
#include <sstream>

#include "fuzz_input.h"
#include "localize/series_csv.h"
#include "recording/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stackwatch;
  std::string text(fuzz::as_text(data, size));
  try {
    std::istringstream in(text);
    localize::SeriesCsvReader reader(in, "fuzz.csv");
    localize::SeriesRow row;
    // Bounded: a reader that never reaches the end is a hang, found by -timeout.
    while (reader.next(row)) {
    }
  } catch (const Error&) {
  }
  try {
    std::istringstream in(text);
    localize::SeriesCsvReader reader(in, "fuzz.csv");
    std::ostringstream out;
    localize::detect_series_csv(reader, out, 1e-3);
  } catch (const Error&) {
  }
  // The first line alone as a timestamp and as a CSV line.
  std::string first = text.substr(0, text.find('\n'));
  (void)localize::split_csv_line(first);
  try {
    (void)localize::parse_timestamp(first);
  } catch (const Error&) {
  }
  return 0;
}
