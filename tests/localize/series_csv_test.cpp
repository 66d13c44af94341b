// Series CSV: timestamps, column selection, errors that name the line, and
// the labelled output of `stackwatch detect FILE.csv`.
#include "localize/series_csv.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "recording/error.h"

namespace stackwatch::localize {
namespace {

TEST(SeriesCsv, ParsesIso8601AndEpochSeconds) {
  EXPECT_DOUBLE_EQ(parse_timestamp("1700000000"), 1700000000.0);
  EXPECT_DOUBLE_EQ(parse_timestamp("1700000000.5"), 1700000000.5);
  EXPECT_DOUBLE_EQ(parse_timestamp("2014-04-10 07:15:00"), 1397114100.0);  // NAB style
  EXPECT_DOUBLE_EQ(parse_timestamp("2014-04-10T07:15:00Z"), 1397114100.0);
  EXPECT_DOUBLE_EQ(parse_timestamp("2014-04-10T09:15:00+02:00"), 1397114100.0);
  EXPECT_DOUBLE_EQ(parse_timestamp("2014-04-10T07:15:00.250Z"), 1397114100.25);
  EXPECT_DOUBLE_EQ(parse_timestamp("2014-04-10"), 1397088000.0);
  EXPECT_THROW(parse_timestamp("yesterday"), Error);
  EXPECT_THROW(parse_timestamp("2014-13-10 07:15:00"), Error);
  EXPECT_THROW(parse_timestamp("2014-04-10 07:15:00 PST"), Error);
}

TEST(SeriesCsv, PicksTheTimestampColumnAndSkipsLabelColumns) {
  std::istringstream in("value,timestamp,is_anomaly,other\n1,1,0,2\n");
  SeriesCsvReader r(in, "y.csv");
  EXPECT_EQ(r.timestamp_column(), "timestamp");
  EXPECT_EQ(r.columns(), (std::vector<std::string>{"value", "other"}));
  SeriesRow row;
  ASSERT_TRUE(r.next(row));
  EXPECT_EQ(row.values, (std::vector<double>{1, 2}));
  EXPECT_FALSE(r.next(row));

  std::istringstream in2("time,a,b\n");
  SeriesCsvReader r2(in2, "x.csv", {"b"});
  EXPECT_EQ(r2.columns(), (std::vector<std::string>{"b"}));
  std::istringstream in3("time,a,b\n");
  EXPECT_THROW(SeriesCsvReader(in3, "x.csv", {"c"}), Error);
}

std::string error_of(const std::string& text) {
  std::istringstream in(text);
  try {
    SeriesCsvReader r(in, "s.csv");
    SeriesRow row;
    while (r.next(row)) {
    }
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SeriesCsv, BadRowsNameTheLine) {
  EXPECT_EQ(error_of("timestamp,value\n1,2\n2,abc\n"), "s.csv:3: column \"value\": \"abc\" is not a finite number");
  EXPECT_EQ(error_of("timestamp,value\n1,2\n\n3,\n"), "s.csv:4: column \"value\": empty value");
  EXPECT_EQ(error_of("timestamp,value\n1,2,3\n"), "s.csv:2: expected 2 fields as in the header, found 3");
  EXPECT_EQ(error_of("timestamp,value\nnoon,2\n"),
            "s.csv:2: column \"timestamp\": \"noon\" is not a timestamp (ISO 8601 or epoch seconds)");
  EXPECT_EQ(error_of("timestamp,value\n1,inf\n"), "s.csv:2: column \"value\": \"inf\" is not a finite number");
  // "nan" is a gap (series.csv writes it for a value it could not measure), not an error.
  EXPECT_EQ(error_of("timestamp,value\n1,nan\n"), "");
  EXPECT_EQ(error_of(""), "s.csv: empty file, expected a header row");
}

TEST(SeriesCsv, DetectWritesScoreAndLabelPerColumnPerRow) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> n(0, 1);
  std::ostringstream csv;
  csv << "timestamp,cpu,latency\n";
  for (int i = 0; i < 300; ++i) {
    double cpu = 50 + n(rng) + (i == 200 ? 15 : 0);
    double latency = 10 + 0.5 * n(rng) + (i >= 250 ? 5 : 0);
    csv << "2024-01-01T00:" << (i / 60 < 10 ? "0" : "") << i / 60 << ":" << (i % 60 < 10 ? "0" : "") << i % 60
        << "Z," << cpu << "," << latency << "\n";
  }
  std::istringstream in(csv.str());
  SeriesCsvReader reader(in, "t.csv");
  std::ostringstream out;
  DetectCsvSummary s = detect_series_csv(reader, out, 1e-4);
  EXPECT_EQ(s.rows, 300u);

  std::istringstream lines(out.str());
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "timestamp,cpu_score,cpu_anomaly,latency_score,latency_anomaly");
  std::vector<std::vector<std::string>> rows;
  while (std::getline(lines, line)) rows.push_back(split_csv_line(line));
  ASSERT_EQ(rows.size(), 300u);
  EXPECT_EQ(rows[0][0], "2024-01-01T00:00:00Z");
  EXPECT_EQ(rows[0][1], "0.0000");  // warm-up
  EXPECT_EQ(rows[200][2], "1");     // the cpu spike
  EXPECT_GT(std::stod(rows[200][1]), 1.0);
  EXPECT_EQ(rows[250][4], "1");  // the latency level shift, at once
  EXPECT_LE(s.anomalies[0], 3u);  // the spike, and little else
  EXPECT_LE(s.anomalies[1], 6u);  // the shift is re-learnt after a few points
}

}  // namespace
}  // namespace stackwatch::localize
