// The inputs the fuzzers found crashes with (tests/fuzz/regressions/), kept
// as ordinary unit tests: each parser turns them into a value or a
// stackwatch::Error, never a crash, an escaping library exception or UB
// (the sanitizer build of the unit tests checks the last).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "flamegraph/folded.h"
#include "recording/error.h"
#include "recording/stacks_json.h"

namespace fs = std::filesystem;

namespace stackwatch {
namespace {

std::vector<std::string> inputs(const std::string& target) {
  std::vector<std::string> out;
  fs::path dir = fs::path(FUZZ_REGRESSIONS_DIR) / target;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

TEST(FuzzRegressions, StacksJsonRejectsMalformedFieldsWithAnError) {
  auto all = inputs("stacks_json");
  ASSERT_FALSE(all.empty());
  for (const std::string& text : all) {
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded()) continue;
    try {
      stacks_from_json(doc);
    } catch (const Error&) {
      // the expected outcome for malformed input
    }
  }
  EXPECT_THROW(stacks_from_json(nlohmann::json::parse(R"({"1": {"name": 5, "pids": {}}})")), Error);
  EXPECT_THROW(stacks_from_json(nlohmann::json::parse(
                   R"({"1": {"pids": {"2": {"0": {"count": 1, "frames": [{"offset": 18446744073709551616}]}}}}})")),
               Error);
}

TEST(FuzzRegressions, FoldedParserRejectsWeightsItCannotHold) {
  auto all = inputs("folded");
  ASSERT_FALSE(all.empty());
  auto weight = [](const std::vector<flamegraph::FoldedStack>& stacks) {
    uint64_t w = 0;
    for (const auto& s : stacks) w += s.weight;
    return w;
  };
  for (const std::string& text : all) {
    std::istringstream in(text);
    std::vector<flamegraph::FoldedStack> stacks;
    try {
      stacks = flamegraph::parse_folded(in);
    } catch (const Error&) {
      continue;
    }
    // What parses survives a write/parse round trip with its weight.
    std::istringstream again(flamegraph::folded_to_string(stacks));
    EXPECT_EQ(weight(flamegraph::parse_folded(again)), weight(stacks)) << text;
  }
  // A first frame that starts with '#' once written (a carriage return
  // became a blank) is not read back as a comment.
  std::string hash_text = flamegraph::folded_to_string({{{"\r#0", "x"}, 2}});
  std::istringstream hash_in(hash_text);
  EXPECT_EQ(weight(flamegraph::parse_folded(hash_in)), 2u) << hash_text;
  for (const char* bad : {"a;b nan\n", "a;b inf\n", "a;b 1e30\n"}) {
    std::istringstream in(bad);
    EXPECT_THROW(flamegraph::parse_folded(in), Error) << bad;
  }
  // A frame of control characters only still makes a line the parser reads back.
  std::string text = flamegraph::folded_to_string({{{"comm", "\n\t"}, 3}});
  std::istringstream in(text);
  auto back = flamegraph::parse_folded(in);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].weight, 3u);
}

}  // namespace
}  // namespace stackwatch
