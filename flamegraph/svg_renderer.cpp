// SVG rendering of a flame layout (see flamegraph.h). The page geometry
// follows flamegraph.pl (1200 px wide, 16 px frames, 10 px margins), so the
// graphs look familiar and its users' habits (click, Ctrl-F) carry over.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "flamegraph/flame_layout.h"
#include "flamegraph/flamegraph.h"
#include "flamegraph/svg_script.h"
#include "flamegraph/svg_text.h"
#include "recording/error.h"

namespace stackwatch::flamegraph {
namespace {

constexpr double kFontWidth = 0.59;  // average glyph width / font size for Verdana, as flamegraph.pl assumes
constexpr double kXPad = 10;         // left and right margins

void append_fixed(std::string& out, double v, int decimals) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  out.append(buf, ec == std::errc() ? end : buf);
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// 1234567 -> "1,234,567": weights are read by people in tooltips.
void append_grouped(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  size_t n = static_cast<size_t>(end - buf);
  for (size_t i = 0; i < n; ++i) {
    if (i && (n - i) % 3 == 0) out += ',';
    out += buf[i];
  }
}

void append_text_element(std::string& out, std::string_view id, double x, double y, std::string_view text,
                         std::string_view cls = {}) {
  out += "<text id=\"";
  out += id;
  out += "\" x=\"";
  append_fixed(out, x, 2);
  out += "\" y=\"";
  append_fixed(out, y, 2);
  out += '"';
  if (!cls.empty()) {
    out += " class=\"";
    out += cls;
    out += '"';
  }
  out += '>';
  append_xml_escaped(out, repair_utf8(text));
  out += "</text>\n";
}

// JSON string for the script's config; the unit is user text.
std::string js_string(std::string_view s) {
  std::string out = "\"";
  for (char c : repair_utf8(s)) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '<' || c == '>' || c == '&') {  // keep "]]>" and tags out of the CDATA
      out += "\\u00";
      out += "0123456789abcdef"[(c >> 4) & 0xf];
      out += "0123456789abcdef"[c & 0xf];
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string render_svg(const FrameTree& tree, const SvgOptions& o, bool differential) {
  if (o.width_px < 100 || o.frame_height_px < 4 || o.font_size_px < 4)
    throw Error("flame graph size too small (width >= 100 px, frame height and font size >= 4 px)");
  const double width = o.width_px, fh = o.frame_height_px, fs = o.font_size_px;
  const double plot_width = width - 2 * kXPad;
  const uint64_t total = tree.total();
  const double px_per_weight = total ? plot_width / static_cast<double>(total) : 0;
  const double min_weight = total ? o.min_width_px / px_per_weight : 0;
  const FlameLayout layout = layout_flame(tree, min_weight, o.max_frames);

  const bool has_subtitle = !o.subtitle.empty() || differential;
  const double ypad1 = fs * 3 + (has_subtitle ? fs * 2 : 0);  // title (and subtitle) band
  const double ypad2 = fs * 2 + 10;                            // details / matched line
  const double height = (layout.max_depth + 1) * fh + ypad1 + ypad2;

  std::string title = o.title;
  if (title.empty()) title = differential ? "Differential Flame Graph" : o.inverted ? "Icicle Graph" : "Flame Graph";
  std::string subtitle = o.subtitle;
  if (differential && subtitle.empty())
    subtitle = "width: current profile; red: grew, blue: shrank, compared with the base" +
               std::string(o.normalize_diff ? " scaled to the same total" : "");

  std::string out;
  out.reserve(4096 + layout.frames.size() * 200);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  out += "<svg version=\"1.1\" width=\"";
  append_int(out, o.width_px);
  out += "\" height=\"";
  append_fixed(out, height, 0);
  out += "\" onload=\"init(evt)\" viewBox=\"0 0 ";
  append_int(out, o.width_px);
  out += ' ';
  append_fixed(out, height, 0);
  out += "\" xmlns=\"http://www.w3.org/2000/svg\">\n";
  out += "<!-- stackwatch flame graph: click a frame to zoom, Ctrl-F to search. -->\n";
  out += "<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">";
  if (differential || o.palette == Palette::kHot)
    out += "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%\"/>";
  else
    out += "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#e0e0ff\" offset=\"95%\"/>";
  out += "</linearGradient></defs>\n<style type=\"text/css\"><![CDATA[";
  out += svg_style();
  out += "]]></style>\n<script type=\"text/ecmascript\"><![CDATA[\nvar fg = {xpad: ";
  append_fixed(out, kXPad, 0);
  out += ", pw: ";
  append_fixed(out, plot_width, 2);
  out += ", fh: ";
  append_fixed(out, fh, 0);
  out += ", fs: ";
  append_fixed(out, fs, 0);
  out += ", fw: ";
  append_fixed(out, kFontWidth, 2);
  out += ", inv: ";
  out += o.inverted ? "true" : "false";
  out += ", h: ";
  append_fixed(out, height, 0);
  out += ", ypad1: ";
  append_fixed(out, ypad1, 0);
  out += ", ypad2: ";
  append_fixed(out, ypad2, 0);
  out += ", units: " + js_string(o.units) + ", search: \"" + to_css(kSearchColor) + "\"};";
  out += svg_script();
  out += "]]></script>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"url(#background)\"/>\n";
  append_text_element(out, "title", width / 2, fs * 2, title);
  if (has_subtitle) append_text_element(out, "subtitle", width / 2, fs * 4, subtitle);
  const double bottom = height - ypad2 / 2;
  append_text_element(out, "details", kXPad, bottom, total ? " " : "No stacks to draw");
  append_text_element(out, "unzoom", kXPad, fs * 2, "Reset Zoom", "hide");
  append_text_element(out, "search", width - kXPad - 100, fs * 2, "Search");
  append_text_element(out, "ignorecase", width - kXPad - 16, fs * 2, "ic");
  append_text_element(out, "matched", width - kXPad, bottom, " ", "hide");

  // Differential: change per frame against the (scaled) base, and the largest
  // one, which gets the strongest colour.
  const double base_scale = differential && o.normalize_diff && tree.base_total()
                                ? static_cast<double>(total) / static_cast<double>(tree.base_total())
                                : 1.0;
  double max_change = 0;
  if (differential)
    for (const FrameRect& f : layout.frames)
      max_change = std::max(max_change, std::abs(static_cast<double>(f.weight) - f.base_weight * base_scale));

  out += "<g id=\"frames\">\n";
  for (const FrameRect& f : layout.frames) {
    const double x = kXPad + static_cast<double>(f.start) * px_per_weight;
    const double w = static_cast<double>(f.weight) * px_per_weight;
    const double y = o.inverted ? ypad1 + f.depth * fh : height - ypad2 - (f.depth + 1) * fh;
    const std::string name = repair_utf8(f.name);
    Rgb fill;
    double change = 0;
    if (differential) {
      change = static_cast<double>(f.weight) - f.base_weight * base_scale;
      fill = diff_color(max_change > 0 ? change / max_change : 0);
    } else {
      fill = frame_color(o.palette, f.kind, f.name);
    }
    out += "<g><title>";
    append_xml_escaped(out, name);
    out += " (";
    append_grouped(out, f.weight);
    out += ' ';
    append_xml_escaped(out, repair_utf8(o.units));
    out += ", ";
    append_fixed(out, 100.0 * static_cast<double>(f.weight) / static_cast<double>(total), 2);
    out += '%';
    if (differential) {
      out += "; ";
      double pct = 100.0 * change / static_cast<double>(total);
      if (pct >= 0) out += '+';
      append_fixed(out, pct, 2);
      out += '%';
    }
    out += ")</title><rect x=\"";
    append_fixed(out, x, 2);
    out += "\" y=\"";
    append_fixed(out, y, 1);
    out += "\" width=\"";
    append_fixed(out, w, 2);
    out += "\" height=\"";
    append_fixed(out, fh - 1, 1);
    out += "\" fill=\"";
    out += to_css(fill);
    out += "\" rx=\"2\"/>";
    const std::string text = fit_label(name, static_cast<size_t>(w / (fs * kFontWidth)));
    if (!text.empty()) {
      out += "<text x=\"";
      append_fixed(out, x + 3, 2);
      out += "\" y=\"";
      append_fixed(out, y + fh - 4.5, 2);
      out += "\">";
      append_xml_escaped(out, text);
      out += "</text>";
    }
    out += "</g>\n";
  }
  out += "</g>\n</svg>\n";
  return out;
}

namespace {

size_t frame_count(const std::vector<FoldedStack>& stacks) {
  size_t n = 0;
  for (const FoldedStack& s : stacks) n += s.frames.size();
  return n;
}

}  // namespace

std::string render_svg(const std::vector<FoldedStack>& stacks, const SvgOptions& options) {
  FrameTree tree;
  tree.reserve(frame_count(stacks));
  for (const FoldedStack& s : stacks) tree.add(s);
  return render_svg(tree, options, false);
}

std::string render_diff_svg(const std::vector<FoldedStack>& base, const std::vector<FoldedStack>& current,
                            const SvgOptions& options) {
  FrameTree tree;
  tree.reserve(frame_count(base) + frame_count(current));
  for (const FoldedStack& s : current) tree.add(s, Profile::kCurrent);
  for (const FoldedStack& s : base) tree.add(s, Profile::kBase);
  return render_svg(tree, options, true);
}

}  // namespace stackwatch::flamegraph
