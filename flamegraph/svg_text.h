// Text that is safe inside SVG: frame names are arbitrary bytes (C++
// templates with <, >, &, quotes; mangled or corrupt names; Latin-1 file
// names), and one bad byte makes the browser refuse the whole file. Names
// are first repaired to valid UTF-8 that XML 1.0 allows, then truncated to a
// frame's width by characters (never inside a UTF-8 sequence), then escaped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace stackwatch::flamegraph {

// Invalid UTF-8 (stray continuation bytes, overlong forms, surrogates, code
// points past U+10FFFF) and characters XML 1.0 forbids (controls, U+FFFE,
// U+FFFF) become U+FFFD, one per offending byte sequence.
std::string repair_utf8(std::string_view bytes);

// Escapes &, <, >, " and ' for element text and attribute values.
void append_xml_escaped(std::string& out, std::string_view text);
std::string xml_escaped(std::string_view text);

// Number of characters (code points) in valid UTF-8.
size_t count_chars(std::string_view utf8);

// The label that fits max_chars characters, as flamegraph.pl draws it: the
// whole name if it fits, else its first max_chars - 2 characters and "..";
// empty when fewer than 3 characters fit. Input must be valid UTF-8.
std::string fit_label(std::string_view utf8, size_t max_chars);

}  // namespace stackwatch::flamegraph
