// --load-threshold: the spec grammar, its error messages, and the decision
// on exact boundaries, NaN and absent values.
#include <gtest/gtest.h>

#include <cmath>

#include "profiler/load_threshold.h"
#include "recording/error.h"

namespace stackwatch::load {
namespace {

using Op = LoadThreshold::Op;

LoadSnapshot with(std::vector<NamedValue> values) {
  LoadSnapshot s;
  s.values = std::move(values);
  return s;
}

std::string error_of(std::string_view spec) {
  try {
    LoadThreshold::parse(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoadThreshold, BareNumberIsTotalCpuPercent) {
  auto t = LoadThreshold::parse("80");
  ASSERT_EQ(t.conditions().size(), 1u);
  EXPECT_EQ(t.conditions()[0], (LoadThreshold::Condition{"cpu_util", Op::kGreater, 80}));
  EXPECT_EQ(t.to_string(), "cpu_util>80");
}

TEST(LoadThreshold, ConditionsWithOperatorsAndSpaces) {
  auto t = LoadThreshold::parse("load1>4, psi_io_some >= 10,cpu1_util<5 ,runq<=0.5");
  std::vector<LoadThreshold::Condition> expected = {{"load1", Op::kGreater, 4},
                                                    {"psi_io_some", Op::kGreaterEqual, 10},
                                                    {"cpu1_util", Op::kLess, 5},
                                                    {"runq", Op::kLessEqual, 0.5}};
  EXPECT_EQ(t.conditions(), expected);
  EXPECT_EQ(t.to_string(), "load1>4,psi_io_some>=10,cpu1_util<5,runq<=0.5");
}

TEST(LoadThreshold, ErrorsSayWhatToWrite) {
  EXPECT_EQ(error_of(""), "--load-threshold: empty condition; use e.g. 80 or cpu_util>80,load1>4");
  EXPECT_EQ(error_of("cpu_util>80,"), "--load-threshold: empty condition; use e.g. 80 or cpu_util>80,load1>4");
  EXPECT_EQ(error_of("cpu_util>"), "--load-threshold: 'cpu_util>' needs a number after the comparison, e.g. cpu_util>80");
  EXPECT_EQ(error_of("high"), "--load-threshold: 'high' needs a number after the comparison, e.g. cpu_util>80");
  EXPECT_EQ(error_of("load1>4x"), "--load-threshold: 'load1>4x' needs a number after the comparison, e.g. cpu_util>80");
  EXPECT_EQ(error_of("150"), "--load-threshold: cpu_util is a percentage (0..100), so '150' would never hold");
  EXPECT_EQ(error_of("cpu_util>100"),
            "--load-threshold: cpu_util is a percentage (0..100), so 'cpu_util>100' would never hold");
  EXPECT_EQ(error_of("-1"), "--load-threshold: cpu_util is a percentage (0..100), so '-1' would always hold");
  EXPECT_NE(error_of("load>3").find("unknown load value 'load'; use one of cpu_util,"), std::string::npos);
  EXPECT_NE(error_of("cpuX_util>3").find("unknown load value 'cpuX_util'"), std::string::npos);
  EXPECT_EQ(error_of("load1>100"), "(no error)");  // not a percentage
  EXPECT_EQ(error_of("cpu_util>=100"), "(no error)");  // a fully busy machine
}

TEST(LoadThreshold, ExceededIsStrictAboveTheLimit) {
  auto t = LoadThreshold::parse("80");
  EXPECT_FALSE(t.exceeded(with({{"cpu_util", 80}})));
  EXPECT_TRUE(t.exceeded(with({{"cpu_util", 80.01}})));
  EXPECT_FALSE(t.exceeded(with({{"cpu_util", 12}})));
  auto ge = LoadThreshold::parse("cpu_util>=80");
  EXPECT_TRUE(ge.exceeded(with({{"cpu_util", 80}})));
  auto lt = LoadThreshold::parse("cpu0_util<5");
  EXPECT_TRUE(lt.exceeded(with({{"cpu0_util", 4.9}})));
  EXPECT_FALSE(lt.exceeded(with({{"cpu0_util", 5}})));
}

TEST(LoadThreshold, AnyConditionIsEnough) {
  auto t = LoadThreshold::parse("cpu_util>80,load1>4");
  EXPECT_FALSE(t.exceeded(with({{"cpu_util", 50}, {"load1", 3}})));
  EXPECT_TRUE(t.exceeded(with({{"cpu_util", 50}, {"load1", 4.5}})));
  EXPECT_TRUE(t.exceeded(with({{"cpu_util", 95}, {"load1", 0.1}})));
  EXPECT_EQ(t.explain(with({{"cpu_util", 93.25}, {"load1", 4.5}})), "cpu_util 93.25 > 80, load1 4.5 > 4");
  EXPECT_EQ(t.explain(with({{"cpu_util", 50}, {"load1", 3}})), "");
}

TEST(LoadThreshold, MissingOrNaNValuesNeverHold) {
  auto t = LoadThreshold::parse("psi_io_some>1,cpu_util<=50");
  EXPECT_FALSE(t.exceeded(with({})));
  EXPECT_FALSE(t.exceeded(with({{"psi_io_some", std::nan("")}, {"cpu_util", std::nan("")}})));
}

}  // namespace
}  // namespace stackwatch::load
