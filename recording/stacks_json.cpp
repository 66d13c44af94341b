// stacks.json writer and reader (see stacks_json.h).
#include "recording/stacks_json.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <memory>

#include "recording/atomic_file.h"
#include "recording/error.h"

namespace stackwatch {

using nlohmann::json;

std::string trace_entry(const Frame& frame) {
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%llx:", static_cast<unsigned long long>(frame.address));
  return addr + frame.display_name();
}

static json frame_to_json(const Frame& f) {
  json j = {{"addr", f.address}, {"function", f.function}, {"module", f.module},
            {"offset", f.module_offset}};
  if (!f.build_id.empty()) j["build_id"] = f.build_id;
  if (!f.file.empty()) {
    j["file"] = f.file;
    j["line"] = f.line;
    if (f.column) j["column"] = f.column;
  }
  if (f.inlined) j["inlined"] = true;
  if (f.kernel) j["kernel"] = true;
  if (!f.unknown_reason.empty()) j["unknown"] = f.unknown_reason;
  return j;
}

// Typed field readers: a field of the wrong type is malformed input (an
// Error naming the key), never an escaping json::type_error, and numbers
// beyond the target type are rejected rather than cast (undefined).
static uint64_t u64_field(const json& j, const char* key, uint64_t fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  throw Error(std::string("stacks.json: \"") + key + "\" is not a non-negative integer");
}

static uint32_t u32_field(const json& j, const char* key) {
  uint64_t v = u64_field(j, key);
  if (v > UINT32_MAX) throw Error(std::string("stacks.json: \"") + key + "\" is out of range");
  return static_cast<uint32_t>(v);
}

static std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) throw Error(std::string("stacks.json: \"") + key + "\" is not a string");
  return it->get<std::string>();
}

static bool bool_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(std::string("stacks.json: \"") + key + "\" is not true or false");
  return it->get<bool>();
}

static double number_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  if (!it->is_number()) throw Error(std::string("stacks.json: \"") + key + "\" is not a number");
  return it->get<double>();
}

static Frame frame_from_json(const json& j) {
  Frame f;
  f.address = u64_field(j, "addr");
  f.function = str_field(j, "function");
  f.module = str_field(j, "module");
  f.module_offset = u64_field(j, "offset");
  f.build_id = str_field(j, "build_id");
  f.file = str_field(j, "file");
  f.line = u32_field(j, "line");
  f.column = u32_field(j, "column");
  f.inlined = bool_field(j, "inlined");
  f.kernel = bool_field(j, "kernel");
  f.unknown_reason = str_field(j, "unknown");
  return f;
}

static json drops_to_json(const DropCounters& d) {
  return {{"kernel_stack_errors", d.kernel_stack_errors},
          {"user_stack_errors", d.user_stack_errors},
          {"stack_map_full", d.stack_map_full},
          {"counts_map_full", d.counts_map_full},
          {"other", d.other},
          {"stack_copy_ring_full", d.copy_ring_full},
          {"total", d.total()}};
}

// One stack's entry under "<tgid>"/"pids"/"<tid>"/"<id>".
static json entry_to_json(const StackSample& s) {
  json entry;
  json trace = json::array();
  json frames = json::array();
  for (const Frame& f : s.frames) {
    trace.push_back(trace_entry(f));
    frames.push_back(frame_to_json(f));
  }
  entry["trace"] = std::move(trace);
  entry["count"] = s.count;
  entry["label"] = s.label ? json(*s.label) : json(nullptr);
  entry["kind"] = to_string(s.kind);
  if (s.kind == StackKind::kOffCpu) {
    entry["off_ns"] = s.off_ns;
    entry["state"] = to_string(s.off_state);
  }
  if (s.kind == StackKind::kMemory || s.kind == StackKind::kIo) {
    entry["bytes"] = s.bytes;
    if (s.kind == StackKind::kIo) entry["latency_ns"] = s.latency_ns;
    entry["detail"] = s.detail;
  }
  if (!s.thread_name.empty()) entry["thread"] = s.thread_name;
  entry["frames"] = std::move(frames);
  return entry;
}

static json meta_to_json(const StacksFileMeta& meta) {
  json m = {{"version", 1},
            {"started_at", meta.started_at},
            {"duration_s", meta.duration_s},
            {"intervals", meta.intervals},
            {"sample_hz", meta.sample_hz},
            {"sampling_event", meta.sampling_event},
            {"dropped", drops_to_json(meta.drops)},
            {"stale_thread_entries", meta.stale_thread_entries}};
  if (meta.extra.is_object())
    for (auto& [k, v] : meta.extra.items()) m[k] = v;
  return m;
}

json stacks_to_json(const std::vector<StackSample>& stacks, const StacksFileMeta& meta) {
  json doc = json::object();
  std::map<uint32_t, uint64_t> next_id;  // per tgid, so ids are small and stable per file
  for (const StackSample& s : stacks) {
    json& proc = doc[std::to_string(s.tgid)];
    if (!proc.contains("name")) {
      proc["name"] = s.process_name;
      proc["pids"] = json::object();
    }
    proc["pids"][std::to_string(s.tid)][std::to_string(next_id[s.tgid]++)] = entry_to_json(s);
  }
  doc["_stackwatch"] = meta_to_json(meta);
  return doc;
}

namespace {

// nlohmann's serializer writing into the file's buffer: values are written
// exactly as dump() writes them, at the nesting depth they have in the file.
class FileAdapter : public nlohmann::detail::output_adapter_protocol<char> {
 public:
  explicit FileAdapter(AtomicFileWriter& file) : file_(file) {}
  void write_character(char c) override { file_.put(c); }
  void write_characters(const char* s, std::size_t length) override { file_.write({s, length}); }

 private:
  AtomicFileWriter& file_;
};

// Where a stack goes in the document. The document's objects are std::maps,
// so dump() orders keys as strings ("10" before "9"); the stream follows.
struct Placement {
  std::string tgid, tid, id;
  size_t stack;  // index in the StackSource
};

// Writes the stack entries straight into the file, byte for byte what
// nlohmann's dump(1) writes for entry_to_json's document, without building
// it: building and freeing a json tree per entry, then walking it, was most
// of record's CPU between samples (perf, a churning machine: 33% of it in
// write_stacks_json). Strings that need escaping (quotes, control
// characters, anything not ASCII, whose UTF-8 dump() checks and mends) go
// through nlohmann's serializer, so the rare hard cases stay exactly its.
class EntryWriter {
 public:
  EntryWriter(AtomicFileWriter& file, nlohmann::detail::serializer<json>& fallback)
      : file_(file), fallback_(fallback) {}

  void string(std::string_view s) {
    for (unsigned char c : s)
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) {
        fallback_.dump(json(std::string(s)), true, false, 1, 0);
        return;
      }
    file_.put('"');
    file_.write(s);
    file_.put('"');
  }

  void number(uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    file_.write({buf, static_cast<size_t>(end - buf)});
  }

  // The entry object, its opening brace at nesting depth `depth`.
  void entry(const StackSample& s, int depth) {
    Object e(*this, depth);
    bool resource = s.kind == StackKind::kMemory || s.kind == StackKind::kIo;
    if (resource) e.key("bytes"), number(s.bytes);
    e.key("count"), number(s.count);
    if (resource) e.key("detail"), string(s.detail);
    e.key("frames");
    array(s.frames.size(), depth + 1, [&](size_t i) { frame(s.frames[i], depth + 2); });
    e.key("kind"), string(to_string(s.kind));
    e.key("label");
    if (s.label)
      string(*s.label);
    else
      file_.write("null");
    if (s.kind == StackKind::kIo) e.key("latency_ns"), number(s.latency_ns);
    if (s.kind == StackKind::kOffCpu) {
      e.key("off_ns"), number(s.off_ns);
      e.key("state"), string(to_string(s.off_state));
    }
    if (!s.thread_name.empty()) e.key("thread"), string(s.thread_name);
    e.key("trace");
    array(s.frames.size(), depth + 1, [&](size_t i) {
      const Frame& f = s.frames[i];
      char addr[32];
      int n = std::snprintf(addr, sizeof addr, "0x%llx:", static_cast<unsigned long long>(f.address));
      trace_.assign(addr, static_cast<size_t>(n));
      trace_ += f.display_name();
      string(trace_);
    });
    e.end();
  }

 private:
  // An object's members, keys in the sorted order the caller gives them.
  class Object {
   public:
    Object(EntryWriter& w, int depth) : w_(w), depth_(depth) { w_.file_.write("{\n"); }
    // Not in a destructor: a write that fails (disk full) throws, and the
    // unwinding must not write again.
    void end() {
      w_.file_.put('\n');
      w_.indent(depth_);
      w_.file_.put('}');
    }
    void key(std::string_view k) {
      if (!first_) w_.file_.write(",\n");
      first_ = false;
      w_.indent(depth_ + 1);
      w_.file_.put('"');
      w_.file_.write(k);
      w_.file_.write("\": ");
    }

   private:
    EntryWriter& w_;
    int depth_;
    bool first_ = true;
  };

  void indent(int depth) { file_.write(std::string_view(kSpaces, static_cast<size_t>(depth))); }

  template <typename Element>
  void array(size_t n, int depth, Element element) {
    if (n == 0) {
      file_.write("[]");
      return;
    }
    file_.write("[\n");
    for (size_t i = 0; i < n; ++i) {
      indent(depth + 1);
      element(i);
      file_.write(i + 1 < n ? ",\n" : "\n");
    }
    indent(depth);
    file_.put(']');
  }

  void frame(const Frame& f, int depth) {
    Object o(*this, depth);
    o.key("addr"), number(f.address);
    if (!f.build_id.empty()) o.key("build_id"), string(f.build_id);
    bool located = !f.file.empty();
    if (located && f.column) o.key("column"), number(f.column);
    if (located) o.key("file"), string(f.file);
    o.key("function"), string(f.function);
    if (f.inlined) o.key("inlined"), file_.write("true");
    if (f.kernel) o.key("kernel"), file_.write("true");
    if (located) o.key("line"), number(f.line);
    o.key("module"), string(f.module);
    o.key("offset"), number(f.module_offset);
    if (!f.unknown_reason.empty()) o.key("unknown"), string(f.unknown_reason);
    o.end();
  }

  // Deeper than any entry nests (8).
  static constexpr const char* kSpaces = "                ";
  AtomicFileWriter& file_;
  nlohmann::detail::serializer<json>& fallback_;
  std::string trace_;
};

}  // namespace

StackPointers::StackPointers(const std::vector<StackSample>& stacks) {
  stacks_.reserve(stacks.size());
  for (const StackSample& s : stacks) stacks_.push_back(&s);
}

void write_stacks_json(const std::string& path, const StackSource& stacks, const StacksFileMeta& meta) {
  std::vector<Placement> order;
  order.reserve(stacks.size());
  {
    std::map<uint32_t, uint64_t> next_id;  // as stacks_to_json numbers them
    for (size_t i = 0; i < stacks.size(); ++i) {
      const StackSample& s = stacks.header(i);
      order.push_back({std::to_string(s.tgid), std::to_string(s.tid), std::to_string(next_id[s.tgid]++), i});
    }
  }
  std::sort(order.begin(), order.end(), [](const Placement& a, const Placement& b) {
    if (a.tgid != b.tgid) return a.tgid < b.tgid;
    if (a.tid != b.tid) return a.tid < b.tid;
    return a.id < b.id;
  });

  StackSample scratch;
  AtomicFileWriter file(path);
  nlohmann::detail::serializer<json> out(std::make_shared<FileAdapter>(file), ' ', json::error_handler_t::replace);
  EntryWriter entries(file, out);
  auto key = [&](const char* indent, const std::string& k) {
    file.write(indent);
    file.put('"');
    file.write(k);  // decimal digits: nothing to escape
    file.write("\": ");
  };
  file.write("{\n");
  for (size_t i = 0; i < order.size();) {
    const std::string& tgid = order[i].tgid;
    key(" ", tgid);
    // The name is the first stack's of the process (id "0"), as in stacks_to_json.
    size_t first = order[i].stack;
    for (size_t j = i; j < order.size() && order[j].tgid == tgid; ++j)
      if (order[j].id == "0") first = order[j].stack;
    file.write("{\n  \"name\": ");
    entries.string(stacks.header(first).process_name);
    file.write(",\n  \"pids\": {\n");
    while (i < order.size() && order[i].tgid == tgid) {
      const std::string& tid = order[i].tid;
      key("   ", tid);
      file.write("{\n");
      while (i < order.size() && order[i].tgid == tgid && order[i].tid == tid) {
        key("    ", order[i].id);
        entries.entry(stacks.get(order[i].stack, scratch), 4);
        ++i;
        bool more = i < order.size() && order[i].tgid == tgid && order[i].tid == tid;
        file.write(more ? ",\n" : "\n");
      }
      bool more = i < order.size() && order[i].tgid == tgid;
      file.write(more ? "   },\n" : "   }\n");
    }
    file.write("  }\n },\n");  // "_stackwatch" always follows: '_' sorts after digits
  }
  file.write(" \"_stackwatch\": ");
  out.dump(meta_to_json(meta), true, false, 1, 1);
  file.write("\n}\n");
  file.commit();
}

void write_stacks_json(const std::string& path, const std::vector<StackSample>& stacks, const StacksFileMeta& meta) {
  write_stacks_json(path, StackPointers(stacks), meta);
}

static bool is_decimal(const std::string& s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return std::stoull(s) <= UINT32_MAX;
}

// Parses "0xADDR:symbol" into a frame when no "frames" array is present.
static Frame frame_from_trace(const std::string& t) {
  Frame f;
  auto colon = t.find(':');
  std::string addr = colon == std::string::npos ? t : t.substr(0, colon);
  try {
    f.address = std::stoull(addr, nullptr, 16);
  } catch (...) {
    f.address = 0;
  }
  if (colon != std::string::npos) f.function = t.substr(colon + 1);
  return f;
}

std::vector<StackSample> stacks_from_json(const json& doc, StacksFileMeta* meta) {
  if (!doc.is_object()) throw Error("stacks.json: top level is not an object");
  std::vector<StackSample> out;
  for (const auto& [tgid_key, proc] : doc.items()) {
    if (!is_decimal(tgid_key)) {
      if (tgid_key == "_stackwatch" && meta && proc.is_object()) {
        meta->started_at = str_field(proc, "started_at");
        meta->duration_s = number_field(proc, "duration_s");
        meta->intervals = u64_field(proc, "intervals");
        meta->sample_hz = u32_field(proc, "sample_hz");
        meta->sampling_event = str_field(proc, "sampling_event");
        meta->stale_thread_entries = u64_field(proc, "stale_thread_entries");
        if (proc.contains("dropped") && proc["dropped"].is_object()) {
          const json& d = proc["dropped"];
          meta->drops.kernel_stack_errors = u64_field(d, "kernel_stack_errors");
          meta->drops.user_stack_errors = u64_field(d, "user_stack_errors");
          meta->drops.stack_map_full = u64_field(d, "stack_map_full");
          meta->drops.counts_map_full = u64_field(d, "counts_map_full");
          meta->drops.other = u64_field(d, "other");
          meta->drops.copy_ring_full = u64_field(d, "stack_copy_ring_full");
        }
      }
      continue;
    }
    if (!proc.is_object() || !proc.contains("pids") || !proc["pids"].is_object())
      throw Error("stacks.json: process " + tgid_key + " has no \"pids\" object");
    std::string name = str_field(proc, "name");
    for (const auto& [tid_key, stacks] : proc["pids"].items()) {
      if (!is_decimal(tid_key) || !stacks.is_object())
        throw Error("stacks.json: process " + tgid_key + ": bad thread entry \"" + tid_key + "\"");
      for (const auto& [id_key, e] : stacks.items()) {
        if (!e.is_object() || !e.contains("count") || !e["count"].is_number_unsigned())
          throw Error("stacks.json: " + tgid_key + "/" + tid_key + "/" + id_key + ": missing \"count\"");
        StackSample s;
        s.tgid = static_cast<uint32_t>(std::stoul(tgid_key));
        s.tid = static_cast<uint32_t>(std::stoul(tid_key));
        s.process_name = name;
        s.thread_name = str_field(e, "thread");
        s.count = u64_field(e, "count");
        s.kind = stack_kind_from_string(str_field(e, "kind"));
        s.bytes = u64_field(e, "bytes");
        s.latency_ns = u64_field(e, "latency_ns");
        s.detail = str_field(e, "detail");
        s.off_ns = u64_field(e, "off_ns");
        s.off_state = off_cpu_state_from_string(str_field(e, "state"));
        if (e.contains("label") && e["label"].is_string()) s.label = e["label"].get<std::string>();
        if (e.contains("frames") && e["frames"].is_array()) {
          for (const json& fj : e["frames"])
            if (fj.is_object()) s.frames.push_back(frame_from_json(fj));
        } else if (e.contains("trace") && e["trace"].is_array()) {
          for (const json& t : e["trace"])
            if (t.is_string()) s.frames.push_back(frame_from_trace(t.get<std::string>()));
        }
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

}  // namespace stackwatch
