// Splitting the line-and-word text of /proc and cgroup files without
// allocating strings: the views point into the caller's text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace stackwatch::load {

std::vector<std::string_view> split_lines(std::string_view text);
std::vector<std::string_view> split_words(std::string_view line);

// "ctxt 492491" -> {"ctxt", "492491"}; the rest keeps inner spacing.
std::pair<std::string_view, std::string_view> split_key(std::string_view line);

// Whole-word decimal numbers; nullopt on anything else (sign, junk, overflow).
std::optional<uint64_t> parse_u64(std::string_view word);
std::optional<double> parse_double(std::string_view word);

}  // namespace stackwatch::load
