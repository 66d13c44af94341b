// pprof profile building (see pprof_writer.h). Strings, functions, mappings
// and locations are interned so a profile of many samples over the same code
// stays small, as pprof expects.
#include "flamegraph/pprof_writer.h"

#include <iterator>
#include <map>
#include <tuple>
#include <unordered_map>

#include "flamegraph/frame_kind.h"
#include "flamegraph/gzip.h"
#include "flamegraph/svg_text.h"
#include "profile.pb.h"
#include "recording/atomic_file.h"

namespace stackwatch::flamegraph {
namespace {

namespace pb = perftools::profiles;

// One frame as pprof sees it: a function at a file and line, in a module.
struct PprofFrame {
  std::string function;
  std::string file;
  int64_t line = 0;
  int64_t column = 0;
  bool inlined = false;  // inlined into the next (outer) frame
};

class ProfileBuilder {
 public:
  ProfileBuilder() { str(""); }  // string_table[0] must be ""

  // proto3 strings must be UTF-8: names with stray bytes are repaired, or
  // the readers reject the whole profile.
  int64_t str(const std::string& s) {
    auto [it, inserted] = strings_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) profile_.add_string_table(repair_utf8(s));
    return it->second;
  }

  uint64_t mapping(const std::string& file, const std::string& build_id) {
    auto [it, inserted] = mappings_.try_emplace({file, build_id}, mappings_.size() + 1);
    if (inserted) {
      pb::Mapping* m = profile_.add_mapping();
      m->set_id(it->second);
      m->set_filename(str(file));
      m->set_build_id(str(build_id));
      // Frames are resolved already: tell pprof not to symbolize again.
      m->set_has_functions(true);
    }
    return it->second;
  }

  void mark_mapping(uint64_t id, bool filenames, bool lines, bool inlines) {
    pb::Mapping* m = profile_.mutable_mapping(static_cast<int>(id - 1));
    if (filenames) m->set_has_filenames(true);
    if (lines) m->set_has_line_numbers(true);
    if (inlines) m->set_has_inline_frames(true);
  }

  uint64_t function(const std::string& name, const std::string& file) {
    key_.assign(name).push_back('\0');
    key_.append(file);
    auto [it, inserted] = functions_.try_emplace(key_, functions_.size() + 1);
    if (inserted) {
      pb::Function* f = profile_.add_function();
      f->set_id(it->second);
      f->set_name(str(name));
      f->set_system_name(str(name));
      f->set_filename(str(file));
    }
    return it->second;
  }

  // A location: the frames at one address, innermost inlined first, the real
  // (outer) function last, as pprof's Location.line wants them.
  uint64_t location(uint64_t mapping_id, uint64_t address, const std::vector<PprofFrame>& frames) {
    // Key: mapping, address and (function id, line, column) per level, as raw bytes.
    std::string key;
    auto put = [&key](uint64_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(mapping_id);
    put(address);
    function_ids_.clear();
    for (const PprofFrame& f : frames) {
      function_ids_.push_back(function(f.function, f.file));
      put(function_ids_.back());
      put(static_cast<uint64_t>(f.line));
      put(static_cast<uint64_t>(f.column));
    }
    auto [it, inserted] = locations_.try_emplace(std::move(key), static_cast<uint64_t>(profile_.location_size()) + 1);
    if (inserted) {
      pb::Location* l = profile_.add_location();
      l->set_id(it->second);
      l->set_mapping_id(mapping_id);
      l->set_address(address);
      for (size_t k = 0; k < frames.size(); ++k) {
        pb::Line* line = l->add_line();
        line->set_function_id(function_ids_[k]);
        line->set_line(frames[k].line);
        line->set_column(frames[k].column);
      }
      mark_mapping(mapping_id, !frames.back().file.empty(), frames.back().line != 0, frames.size() > 1);
    }
    return it->second;
  }

  // Fast path for folded stacks: a location that is one function, no address.
  uint64_t function_location(uint64_t mapping_id, uint64_t function_id) {
    auto [it, inserted] = function_locations_.try_emplace((mapping_id << 40) | function_id, 0);
    if (inserted) {
      it->second = static_cast<uint64_t>(profile_.location_size()) + 1;
      locations_.emplace("f" + std::to_string(it->first), it->second);  // keep ids unique across both maps
      pb::Location* l = profile_.add_location();
      l->set_id(it->second);
      l->set_mapping_id(mapping_id);
      l->add_line()->set_function_id(function_id);
    }
    return it->second;
  }

  pb::Profile& profile() { return profile_; }

  std::string finish(const PprofOptions& o) {
    if (o.period > 0) {
      profile_.mutable_period_type()->set_type(str(o.period_type));
      profile_.mutable_period_type()->set_unit(str(o.period_unit));
      profile_.set_period(o.period);
    }
    profile_.set_time_nanos(o.time_nanos);
    profile_.set_duration_nanos(o.duration_nanos);
    for (const std::string& c : o.comments) profile_.add_comment(str(c));
    std::string raw;
    profile_.SerializeToString(&raw);
    return gzip_compress(raw);
  }

 private:
  pb::Profile profile_;
  std::unordered_map<std::string, int64_t> strings_;
  std::map<std::pair<std::string, std::string>, uint64_t> mappings_;
  std::unordered_map<std::string, uint64_t> functions_;  // name '\0' file -> id
  std::unordered_map<std::string, uint64_t> locations_;
  std::unordered_map<uint64_t, uint64_t> function_locations_;  // (mapping << 40 | function) -> location
  std::string key_;
  std::vector<uint64_t> function_ids_;
};

void add_label(pb::Sample* s, ProfileBuilder& b, const std::string& key, const std::string& value) {
  pb::Label* l = s->add_label();
  l->set_key(b.str(key));
  l->set_str(b.str(value));
}

void add_num_label(pb::Sample* s, ProfileBuilder& b, const std::string& key, int64_t value) {
  pb::Label* l = s->add_label();
  l->set_key(b.str(key));
  l->set_num(value);
}

}  // namespace

std::string pprof_profile(const std::vector<FoldedStack>& stacks, const PprofOptions& options) {
  ProfileBuilder b;
  pb::ValueType* vt = b.profile().add_sample_type();
  vt->set_type(b.str(options.sample_type));
  vt->set_unit(b.str(options.sample_unit));
  // Folded files name no modules; kernel frames (`_[k]`) get the kernel's
  // mapping so pprof can still tell the two apart (e.g. -hide '\[kernel').
  const uint64_t user_mapping = b.mapping("[user]", "");
  const uint64_t kernel_mapping = b.mapping("[kernel.kallsyms]", "");
  std::vector<PprofFrame> group;
  // Each distinct frame name is classified and interned once: 100,000 stacks
  // have millions of frames but a few thousand names.
  struct Known {
    FrameKind kind;
    uint64_t function_id;
  };
  std::unordered_map<std::string_view, Known> known;
  for (const FoldedStack& s : stacks) {
    if (s.weight == 0 || s.frames.empty()) continue;
    pb::Sample* sample = b.profile().add_sample();
    sample->add_value(static_cast<int64_t>(s.weight));
    // Innermost first; `_[i]` frames are inlined into the frame outside them
    // and share its location.
    group.clear();
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      auto k = known.find(*it);
      if (k == known.end()) {
        FrameKind kind = classify_frame(*it);
        k = known.emplace(*it, Known{kind, b.function(std::string(strip_annotation(*it)), "")}).first;
      }
      const FrameKind kind = k->second.kind;
      if (group.empty() && kind != FrameKind::kInlined) {
        sample->add_location_id(b.function_location(kind == FrameKind::kKernel ? kernel_mapping : user_mapping,
                                                     k->second.function_id));
        continue;
      }
      PprofFrame f;
      f.function = std::string(strip_annotation(*it));
      f.inlined = kind == FrameKind::kInlined;
      group.push_back(std::move(f));
      if (group.back().inlined && std::next(it) != s.frames.rend()) continue;
      uint64_t mapping = kind == FrameKind::kKernel ? kernel_mapping : user_mapping;
      sample->add_location_id(b.location(mapping, 0, group));
      group.clear();
    }
  }
  return b.finish(options);
}

std::string pprof_profile(const std::vector<StackSample>& samples, const PprofOptions& options) {
  return pprof_profile(StackPointers(samples), options);
}

std::string pprof_profile(const StackSource& samples, const PprofOptions& options) {
  ProfileBuilder b;
  bool any_off = false;
  for (size_t i = 0; i < samples.size(); ++i) any_off |= samples.header(i).kind == StackKind::kOffCpu;
  pb::ValueType* vt = b.profile().add_sample_type();
  vt->set_type(b.str("samples"));
  vt->set_unit(b.str("count"));
  if (any_off) {
    vt = b.profile().add_sample_type();
    vt->set_type(b.str("off_cpu"));
    vt->set_unit(b.str("nanoseconds"));
    b.profile().set_default_sample_type(b.str("off_cpu"));
  }
  std::vector<PprofFrame> group;
  StackSample scratch;
  for (size_t k = 0; k < samples.size(); ++k) {
    if (samples.header(k).count == 0 && samples.header(k).off_ns == 0) continue;
    const StackSample& s = samples.get(k, scratch);
    pb::Sample* sample = b.profile().add_sample();
    sample->add_value(static_cast<int64_t>(s.count));
    if (any_off) sample->add_value(s.kind == StackKind::kOffCpu ? static_cast<int64_t>(s.off_ns) : 0);
    group.clear();
    for (size_t i = 0; i < s.frames.size(); ++i) {
      const Frame& fr = s.frames[i];
      PprofFrame f;
      f.function = fr.display_name();
      f.file = fr.file;
      f.line = fr.line;
      f.column = fr.column;
      f.inlined = fr.inlined;
      group.push_back(std::move(f));
      if (fr.inlined && i + 1 < s.frames.size()) continue;
      std::string module = fr.module.empty() ? (fr.kernel ? "[kernel.kallsyms]" : "[unknown]") : fr.module;
      uint64_t mapping = b.mapping(module, fr.build_id);
      sample->add_location_id(b.location(mapping, fr.address, group));
      group.clear();
    }
    add_num_label(sample, b, "pid", s.tgid);
    add_num_label(sample, b, "tid", s.tid);
    add_label(sample, b, "comm", s.process_name);
    if (!s.thread_name.empty()) add_label(sample, b, "thread", s.thread_name);
    add_label(sample, b, "kind", to_string(s.kind));
    if (s.label) add_label(sample, b, "anomaly", *s.label);
  }
  return b.finish(options);
}

void write_pprof(const std::string& path, const std::vector<FoldedStack>& stacks, const PprofOptions& options) {
  write_file_atomically(path, pprof_profile(stacks, options));
}

void write_pprof(const std::string& path, const std::vector<StackSample>& samples, const PprofOptions& options) {
  write_file_atomically(path, pprof_profile(samples, options));
}

void write_pprof(const std::string& path, const StackSource& samples, const PprofOptions& options) {
  write_file_atomically(path, pprof_profile(samples, options));
}

}  // namespace stackwatch::flamegraph
