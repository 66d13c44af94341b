// Embedded script and style of the SVG flame graphs (see svg_script.h).
//
// How the script finds the tree without a data copy: the renderer writes the
// frames in pre-order (a parent, then its children left to right), one <g>
// per frame with a <title> "NAME (WEIGHT UNITS, SHARE%...)" and a <rect>
// whose y gives the depth. Walking them once with a stack of open frames
// recovers each frame's parent and the range of its descendants, so zoom and
// the matched share are computed on exact integer weights, not on pixels.
#include "flamegraph/svg_script.h"

namespace stackwatch::flamegraph {

std::string_view svg_script() {
  return R"JS(
"use strict";
var fg_frames = [], byG = new Map(), zoomed = null, searching = null, ignorecase = false;
var details, matchedtext, unzoombtn, searchbtn, icbtn, svgroot;
function init(evt) {
  if (svgroot) return;
  svgroot = document.documentElement;
  details = document.getElementById("details").firstChild;
  matchedtext = document.getElementById("matched");
  unzoombtn = document.getElementById("unzoom");
  searchbtn = document.getElementById("search");
  icbtn = document.getElementById("ignorecase");
  var gs = document.getElementById("frames").children, open = [];
  var re = /^([\s\S]*) \(([\d,]+) ([^,]*), ([\d.]+)%([^)]*)\)$/;
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], r = g.querySelector("rect"), title = g.querySelector("title").textContent;
    var m = re.exec(title);
    var y = +r.getAttribute("y");
    var f = {
      g: g, rect: r, text: g.querySelector("text"), title: title, idx: i, end: i + 1,
      name: m ? m[1] : title, weight: m ? parseInt(m[2].replace(/,/g, ""), 10) : 0,
      x: +r.getAttribute("x"), w: +r.getAttribute("width"), y: y,
      fill: r.getAttribute("fill"),
      depth: Math.round(fg.inv ? (y - fg.ypad1) / fg.fh : (fg.h - fg.ypad2 - y) / fg.fh - 1)
    };
    while (open.length && open[open.length - 1].depth >= f.depth) open.pop().end = i;
    f.parent = open.length ? open[open.length - 1] : null;
    open.push(f);
    fg_frames.push(f);
    byG.set(g, f);
  }
  while (open.length) open.pop().end = fg_frames.length;
  var box = document.getElementById("frames");
  box.addEventListener("click", function (e) {
    var f = frame_of(e.target);
    if (f) zoom(f);
  });
  box.addEventListener("mouseover", function (e) {
    var f = frame_of(e.target);
    if (f) details.nodeValue = "Function: " + f.title;
  });
  box.addEventListener("mouseout", function () { details.nodeValue = " "; });
  unzoombtn.addEventListener("click", unzoom);
  searchbtn.addEventListener("click", function () { if (searching !== null) reset_search(); else search_prompt(); });
  icbtn.addEventListener("click", toggle_ignorecase);
  window.addEventListener("keydown", function (e) {
    if (e.keyCode === 114 || ((e.ctrlKey || e.metaKey) && e.keyCode === 70)) {
      e.preventDefault();
      search_prompt();
    } else if ((e.ctrlKey || e.metaKey) && e.keyCode === 73) {
      e.preventDefault();
      toggle_ignorecase();
    } else if (e.keyCode === 27) {
      if (searching !== null) reset_search(); else unzoom();
    }
  });
  var params = new URLSearchParams(document.location.search);
  if (params.get("s")) search(params.get("s"));
}
function frame_of(el) {
  var g = el && el.closest ? el.closest("#frames > g") : null;
  return g ? byG.get(g) : null;
}
function label(f, w) {
  var chars = Math.floor(w / (fg.fs * fg.fw));
  if (chars < 3) return "";
  var cs = Array.from(f.name);
  return cs.length <= chars ? f.name : cs.slice(0, chars - 2).join("") + "..";
}
function place(f, x, w) {
  f.rect.setAttribute("x", x.toFixed(2));
  f.rect.setAttribute("width", w.toFixed(2));
  var t = label(f, w);
  if (!f.text) {
    if (t === "") return;
    f.text = document.createElementNS("http://www.w3.org/2000/svg", "text");
    f.text.setAttribute("y", (f.y + fg.fh - 4.5).toFixed(2));
    f.g.appendChild(f.text);
  }
  f.text.setAttribute("x", (x + 3).toFixed(2));
  f.text.textContent = t;
}
function zoom(z) {
  zoomed = z;
  unzoombtn.classList.remove("hide");
  var ancestors = new Set();
  for (var p = z.parent; p; p = p.parent) ancestors.add(p);
  var scale = fg.pw / z.w;
  for (var i = 0; i < fg_frames.length; i++) {
    var f = fg_frames[i], cl = f.g.classList;
    if (i >= z.idx && i < z.end) {
      cl.remove("hide", "parent");
      place(f, fg.xpad + (f.x - z.x) * scale, f.w * scale);
    } else if (ancestors.has(f)) {
      cl.remove("hide");
      cl.add("parent");
      place(f, fg.xpad, fg.pw);
    } else if (!cl.contains("hide")) {
      cl.add("hide");
    }
  }
  if (searching !== null) search(searching);
}
function unzoom() {
  zoomed = null;
  unzoombtn.classList.add("hide");
  for (var i = 0; i < fg_frames.length; i++) {
    var f = fg_frames[i];
    f.g.classList.remove("hide", "parent");
    place(f, f.x, f.w);
  }
  if (searching !== null) search(searching);
}
function toggle_ignorecase() {
  ignorecase = !ignorecase;
  icbtn.classList.toggle("show", ignorecase);
  if (searching !== null) search(searching);
}
function search_prompt() {
  var term = prompt("Enter a search term (regexp allowed, eg: ^ext4_)" +
                    (ignorecase ? ", ignoring case" : "") + "\nPress Ctrl-i to toggle case sensitivity", "");
  if (term) search(term);
}
function reset_search() {
  searching = null;
  for (var i = 0; i < fg_frames.length; i++) {
    if (fg_frames[i].hit) fg_frames[i].rect.setAttribute("fill", fg_frames[i].fill);
    fg_frames[i].hit = false;
  }
  searchbtn.classList.remove("show");
  searchbtn.firstChild.nodeValue = "Search";
  matchedtext.classList.add("hide");
}
// The matched share counts each sample once: a match inside a matched frame
// adds nothing, so "Matched" never exceeds 100%.
function search(term) {
  var re;
  try { re = new RegExp(term, ignorecase ? "i" : ""); } catch (e) { return; }
  searching = term;
  var matched = 0, covered_until = -1, root = fg_frames.length ? fg_frames[0] : null;
  for (var i = 0; i < fg_frames.length; i++) {
    var f = fg_frames[i];
    var hit = re.test(f.name);
    // Touch only frames whose colour changes: restyling every frame is what
    // makes a large graph slow to search.
    if (hit !== !!f.hit) {
      f.rect.setAttribute("fill", hit ? fg.search : f.fill);
      f.hit = hit;
    }
    if (hit && i >= covered_until) {
      matched += f.weight;
      covered_until = f.end;
    }
  }
  searchbtn.classList.add("show");
  searchbtn.firstChild.nodeValue = "Reset Search";
  var total = root ? root.weight : 0;
  var pct = total ? 100 * matched / total : 0;
  matchedtext.classList.remove("hide");
  matchedtext.firstChild.nodeValue = "Matched: " + pct.toFixed(2) + "%";
}
)JS";
}

std::string_view svg_style() {
  return R"CSS(
text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: 12px; fill: rgb(0,0,0); }
#title { text-anchor: middle; font-size: 17px; }
#subtitle { text-anchor: middle; fill: rgb(110,110,110); }
#search, #ignorecase { opacity: 0.1; cursor: pointer; }
#search:hover, #search.show, #ignorecase:hover, #ignorecase.show { opacity: 1; }
#unzoom { cursor: pointer; }
#matched { text-anchor: end; }
#frames > g > rect { stroke-width: 0; }
#frames > g:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.5; cursor: pointer; }
#frames > g > text { pointer-events: none; }
.hide { display: none; }
.parent { opacity: 0.5; }
)CSS";
}

}  // namespace stackwatch::flamegraph
