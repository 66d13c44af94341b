// The SVG as a browser and a user see it: one rect per drawn frame with
// exact geometry, escaped and repaired text, truncated labels, palettes,
// differential colours, icicle layout. The SVG is parsed back here.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>

#include "flamegraph/flamegraph.h"
#include "flamegraph/svg_text.h"

namespace stackwatch::flamegraph {
namespace {

struct SvgFrame {
  std::string title;  // as written (escaped)
  double x = 0, y = 0, width = 0;
  Rgb fill;
  std::string label;  // as written (escaped), empty when none
};

std::vector<SvgFrame> frames_of(const std::string& svg) {
  static const std::regex re(
      R"re(^<g><title>(.*)</title><rect x="([0-9.]+)" y="([0-9.]+)" width="([0-9.]+)" height="15\.0" )re"
      R"re(fill="rgb\((\d+),(\d+),(\d+)\)" rx="2"/>(?:<text x="[0-9.]+" y="[0-9.]+">(.*)</text>)?</g>$)re");
  std::vector<SvgFrame> out;
  std::istringstream in(svg);
  bool in_frames = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "<g id=\"frames\">") in_frames = true;
    else if (line == "</g>") in_frames = false;
    else if (in_frames) {
      std::smatch m;
      if (!std::regex_match(line, m, re)) {
        ADD_FAILURE() << "unexpected frame line: " << line;
        continue;
      }
      SvgFrame f;
      f.title = m[1];
      f.x = std::stod(m[2]);
      f.y = std::stod(m[3]);
      f.width = std::stod(m[4]);
      f.fill = {static_cast<uint8_t>(std::stoi(m[5])), static_cast<uint8_t>(std::stoi(m[6])),
                static_cast<uint8_t>(std::stoi(m[7]))};
      f.label = m[8];
      out.push_back(f);
    }
  }
  return out;
}

const SvgFrame* find(const std::vector<SvgFrame>& fs, const std::string& title_prefix) {
  for (const auto& f : fs)
    if (f.title.rfind(title_prefix + " (", 0) == 0) return &f;
  return nullptr;
}

// Every '&' starts one of the five entities, and no '<' is inside text.
void expect_well_escaped(const std::string& svg) {
  size_t start = svg.find("<g id=\"frames\">");
  ASSERT_NE(start, std::string::npos);
  static const std::regex entity(R"(&(amp|lt|gt|quot|apos);)");
  for (size_t i = start; (i = svg.find('&', i)) != std::string::npos; ++i) {
    std::string rest = svg.substr(i, 6);
    EXPECT_TRUE(std::regex_search(rest, entity, std::regex_constants::match_continuous)) << svg.substr(i, 20);
  }
}

TEST(SvgRenderer, OneRectPerFrameWithExactGeometry) {
  // 100 samples over 1180 px: 11.8 px per sample.
  std::vector<FoldedStack> stacks = {{{"app", "main", "parse"}, 30}, {{"app", "main", "render"}, 50},
                                     {{"app", "main"}, 20}};
  SvgOptions o;
  o.title = "T";
  std::string svg = render_svg(stacks, o);
  auto fs = frames_of(svg);
  ASSERT_EQ(fs.size(), 5u);
  EXPECT_EQ(fs[0].title, "all (100 samples, 100.00%)");
  EXPECT_DOUBLE_EQ(fs[0].x, 10.0);
  EXPECT_DOUBLE_EQ(fs[0].width, 1180.0);
  const SvgFrame* parse = find(fs, "parse");
  const SvgFrame* render = find(fs, "render");
  const SvgFrame* main = find(fs, "main");
  ASSERT_TRUE(parse && render && main);
  EXPECT_EQ(parse->title, "parse (30 samples, 30.00%)");
  EXPECT_DOUBLE_EQ(parse->x, 10.0);
  EXPECT_DOUBLE_EQ(parse->width, 354.0);
  EXPECT_DOUBLE_EQ(render->x, 364.0);
  EXPECT_DOUBLE_EQ(render->width, 590.0);
  // Flame layout: children above parents, one frame height (16 px) apart.
  EXPECT_DOUBLE_EQ(main->y - parse->y, 16.0);
  EXPECT_DOUBLE_EQ(fs[0].y - main->y, 32.0);
  EXPECT_EQ(parse->label, "parse");
  EXPECT_NE(svg.find("<text id=\"title\" x=\"600.00\" y=\"24.00\">T</text>"), std::string::npos);
  EXPECT_NE(svg.find("<script type=\"text/ecmascript\"><![CDATA["), std::string::npos);
  // No external resources: the only URLs are the SVG namespace and an in-document gradient.
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("@import"), std::string::npos);
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t i = svg.find(needle); i != std::string::npos; i = svg.find(needle, i + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("http"), count("http://www.w3.org/2000/svg"));
  EXPECT_EQ(count("url("), count("url(#background)"));
}

TEST(SvgRenderer, IcicleHasTheRootOnTop) {
  std::vector<FoldedStack> stacks = {{{"a", "b"}, 1}};
  SvgOptions o;
  o.inverted = true;
  auto fs = frames_of(render_svg(stacks, o));
  ASSERT_EQ(fs.size(), 3u);
  EXPECT_LT(fs[0].y, find(fs, "a")->y);
  EXPECT_DOUBLE_EQ(find(fs, "b")->y - find(fs, "a")->y, 16.0);
  EXPECT_DOUBLE_EQ(fs[0].y, 36.0);  // right under the title band
}

TEST(SvgRenderer, EscapesCppNamesAndRepairsBytes) {
  std::string cpp = "std::map<int, char>::operator[](int const&) \"q\" 'a'";
  std::string bad = "bad\xff\xfe\xc3(name";
  std::vector<FoldedStack> stacks = {{{"p", cpp}, 50}, {{"p", bad}, 50}};
  std::string svg = render_svg(stacks, {});
  expect_well_escaped(svg);
  std::istringstream lines(svg);
  for (std::string line; std::getline(lines, line);) EXPECT_EQ(repair_utf8(line), line) << "not valid UTF-8";
  auto fs = frames_of(svg);
  const SvgFrame* f = find(fs, "std::map&lt;int, char&gt;::operator[](int const&amp;) &quot;q&quot; &apos;a&apos;");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(svg.find("std::map<int"), std::string::npos);
  EXPECT_NE(find(fs, "bad\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD(name"), nullptr);
}

TEST(SvgRenderer, TruncatesLongLabelsWithTwoDots) {
  std::string long_name(200, 'x');
  std::vector<FoldedStack> stacks = {{{"p", long_name}, 10}, {{"p", "short"}, 90}};
  auto fs = frames_of(render_svg(stacks, {}));
  const SvgFrame* f = find(fs, long_name);
  ASSERT_NE(f, nullptr);
  // 118 px / (12 px * 0.59) = 16 characters: 14 and "..".
  EXPECT_EQ(f->label, std::string(14, 'x') + "..");
  EXPECT_EQ(find(fs, "short")->label, "short");
}

TEST(SvgRenderer, ElidedFramesStayInTheTotals) {
  std::vector<FoldedStack> stacks = {{{"p", "big"}, 100000}, {{"p", "small1"}, 1}, {{"p", "small2"}, 1}};
  SvgOptions o;
  o.min_width_px = 0.1;  // 1 sample is 0.0118 px here
  auto fs = frames_of(render_svg(stacks, o));
  EXPECT_EQ(find(fs, "small1"), nullptr);
  EXPECT_EQ(find(fs, "all")->title, "all (100,002 samples, 100.00%)");
  EXPECT_EQ(find(fs, "p")->title, "p (100,002 samples, 100.00%)");
  EXPECT_DOUBLE_EQ(find(fs, "p")->width, 1180.0);
  o.min_width_px = 0;
  EXPECT_NE(find(frames_of(render_svg(stacks, o)), "small1"), nullptr);
}

TEST(SvgRenderer, OffCpuSaysMicrosecondsInCoolColours) {
  std::vector<FoldedStack> stacks = {{{"app", "read_file", "vfs_read_[k]"}, 1500}};
  SvgOptions o;
  o.units = "us";
  o.palette = Palette::kCool;
  auto fs = frames_of(render_svg(stacks, o));
  const SvgFrame* user = find(fs, "read_file");
  const SvgFrame* kernel = find(fs, "vfs_read_[k]");
  ASSERT_TRUE(user && kernel);
  EXPECT_EQ(user->title, "read_file (1,500 us, 100.00%)");
  EXPECT_GT(user->fill.b, user->fill.r);  // blue
  EXPECT_GT(kernel->fill.g, kernel->fill.r);  // teal/green
  EXPECT_NE(user->fill, kernel->fill);
}

TEST(Palette, KindsAreToldApartInEveryPalette) {
  for (Palette p : {Palette::kHot, Palette::kCool, Palette::kMem, Palette::kIo}) {
    std::vector<Rgb> seen;
    for (FrameKind k : {FrameKind::kUser, FrameKind::kLibrary, FrameKind::kKernel, FrameKind::kInlined,
                        FrameKind::kJit, FrameKind::kUnknown}) {
      Rgb c = frame_color(p, k, "same_name");
      for (Rgb s : seen) EXPECT_NE(c, s) << to_string(p) << " " << to_string(k);
      seen.push_back(c);
    }
  }
  Rgb hot_user = frame_color(Palette::kHot, FrameKind::kUser, "f");
  EXPECT_GE(hot_user.r, 205);  // reds for on-CPU
  Rgb hot_kernel = frame_color(Palette::kHot, FrameKind::kKernel, "f");
  EXPECT_EQ(hot_kernel.b, 0);  // orange
  // Stable: a function keeps its colour.
  EXPECT_EQ(frame_color(Palette::kHot, FrameKind::kUser, "foo"), frame_color(Palette::kHot, FrameKind::kUser, "foo"));
  EXPECT_EQ(parse_palette("off-cpu"), Palette::kCool);
}

TEST(DiffColours, GrowthRedShrinkageBlueByMagnitude) {
  EXPECT_EQ(diff_color(1.0), (Rgb{255, 0, 0}));
  EXPECT_EQ(diff_color(-1.0), (Rgb{0, 0, 255}));
  EXPECT_EQ(diff_color(0.0), (Rgb{250, 250, 250}));
  Rgb small_growth = diff_color(0.25), big_growth = diff_color(0.75);
  EXPECT_EQ(small_growth.r, 255);
  EXPECT_GT(small_growth.g, big_growth.g);  // bigger change, deeper red
  Rgb shrink = diff_color(-0.5);
  EXPECT_EQ(shrink.b, 255);
  EXPECT_LT(shrink.r, 255);
}

TEST(SvgRenderer, DifferentialSignsAndWidthsFromTheNewProfile) {
  std::vector<FoldedStack> base = {{{"a", "grow"}, 10}, {{"a", "shrink"}, 30}, {{"a", "same"}, 10}};
  std::vector<FoldedStack> current = {{{"a", "grow"}, 30}, {{"a", "shrink"}, 10}, {{"a", "same"}, 10}};
  std::string svg = render_diff_svg(base, current, {});
  auto fs = frames_of(svg);
  const SvgFrame* grow = find(fs, "grow");
  const SvgFrame* shrink = find(fs, "shrink");
  const SvgFrame* same = find(fs, "same");
  ASSERT_TRUE(grow && shrink && same);
  EXPECT_EQ(grow->fill, (Rgb{255, 0, 0}));    // the largest change: full red
  EXPECT_EQ(shrink->fill, (Rgb{0, 0, 255}));  // as large, shrinking: full blue
  EXPECT_EQ(same->fill, (Rgb{250, 250, 250}));
  EXPECT_EQ(grow->title, "grow (30 samples, 60.00%; +40.00%)");
  EXPECT_EQ(shrink->title, "shrink (10 samples, 20.00%; -40.00%)");
  EXPECT_DOUBLE_EQ(grow->width, 1180.0 * 30 / 50);
  EXPECT_NE(svg.find("Differential Flame Graph"), std::string::npos);
}

TEST(SvgRenderer, DifferentialNormalizesTheBaseTotal) {
  // The base ran twice as long: same shape, so nothing changed.
  std::vector<FoldedStack> base = {{{"a", "x"}, 20}, {{"a", "y"}, 60}};
  std::vector<FoldedStack> current = {{{"a", "x"}, 10}, {{"a", "y"}, 30}};
  auto fs = frames_of(render_diff_svg(base, current, {}));
  EXPECT_EQ(find(fs, "x")->fill, (Rgb{250, 250, 250}));
  EXPECT_EQ(find(fs, "y")->fill, (Rgb{250, 250, 250}));
  SvgOptions raw;
  raw.normalize_diff = false;
  auto fs_raw = frames_of(render_diff_svg(base, current, raw));
  EXPECT_EQ(find(fs_raw, "y")->fill.b, 255);  // without normalizing, fewer samples look like shrinkage
}

TEST(SvgRenderer, ResolvedSamplesColourLibrariesByModule) {
  // Names alone cannot tell a library function from the program's; modules can.
  StackSample s;
  s.process_name = "srv";
  s.count = 10;
  Frame lib;
  lib.function = "memcpy_impl";
  lib.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  Frame own;
  own.function = "copy_rows";
  own.module = "/usr/bin/srv";
  Frame k;
  k.function = "clear_page_erms";
  k.kernel = true;
  s.frames = {k, lib, own};  // innermost first
  auto fs = frames_of(render_svg(std::vector<StackSample>{s}, SvgOptions{}));
  ASSERT_EQ(fs.size(), 5u);  // all, srv, copy_rows, memcpy_impl, clear_page_erms_[k]
  const SvgFrame* l = find(fs, "memcpy_impl");
  const SvgFrame* u = find(fs, "copy_rows");
  const SvgFrame* kf = find(fs, "clear_page_erms_[k]");
  ASSERT_TRUE(l && u && kf);
  EXPECT_EQ(l->fill, frame_color(Palette::kHot, FrameKind::kLibrary, "memcpy_impl"));
  EXPECT_EQ(u->fill, frame_color(Palette::kHot, FrameKind::kUser, "copy_rows"));
  EXPECT_EQ(kf->fill, frame_color(Palette::kHot, FrameKind::kKernel, "clear_page_erms_[k]"));
  EXPECT_GT(u->y, l->y);  // the caller is drawn below its callee
  EXPECT_GT(l->y, kf->y);
}

TEST(SvgRenderer, EmptyProfileIsAValidGraph) {
  std::string svg = render_svg(std::vector<FoldedStack>{}, SvgOptions{});
  EXPECT_NE(svg.find("No stacks to draw"), std::string::npos);
  EXPECT_EQ(frames_of(svg).size(), 0u);
}

TEST(SvgText, RepairEscapeAndFit) {
  EXPECT_EQ(repair_utf8("ok \xC3\xA9"), "ok \xC3\xA9");                          // é stays
  EXPECT_EQ(repair_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");               // overlong '/'
  EXPECT_EQ(repair_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(repair_utf8("a\x01" "b"), "a\xEF\xBF\xBD" "b");                       // control
  EXPECT_EQ(repair_utf8("\xF0\x9F\x94\xA5"), "\xF0\x9F\x94\xA5");                // emoji stays
  EXPECT_EQ(xml_escaped("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
  EXPECT_EQ(fit_label("abcdef", 6), "abcdef");
  EXPECT_EQ(fit_label("abcdefg", 6), "abcd..");
  EXPECT_EQ(fit_label("abcdefg", 2), "");
  EXPECT_EQ(fit_label("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9..");  // never splits a character
}

}  // namespace
}  // namespace stackwatch::flamegraph
