// JIT symbols from /tmp/perf-PID.map, the format V8, the JVM (perf-map-agent),
// LuaJIT and others write: "START SIZE name" per line, hex addresses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace stackwatch::symbolizer {

struct JitSymbol {
  uint64_t start = 0;
  uint64_t size = 0;
  std::string name;
};

class PerfMap {
 public:
  static PerfMap parse(std::string_view text);
  // The symbol covering address, or nullptr. Later entries win over earlier
  // ones at the same address (JITs re-use code memory).
  const JitSymbol* find(uint64_t address) const;
  bool empty() const { return symbols_.empty(); }

 private:
  std::vector<JitSymbol> symbols_;
};

}  // namespace stackwatch::symbolizer
