// intervals.jsonl: summarizing an Interval and its JSON form (see interval_log.h).
#include "localize/interval_log.h"

#include <iterator>
#include <unordered_map>

#include "localize/json_lines.h"
#include "recording/error.h"

namespace stackwatch::localize {

using nlohmann::json;

namespace {

std::string basename_of(const std::string& module, bool kernel) {
  if (module.empty()) return kernel ? "[kernel]" : "[unknown]";
  auto slash = module.rfind('/');
  return slash == std::string::npos ? module : module.substr(slash + 1);
}

uint64_t weight_of(const StackSample& s) {
  return s.kind == StackKind::kOnCpu ? s.count : s.off_ns / 1000;
}

}  // namespace

std::string stack_identity(const StackSample& sample) {
  // Built once per stack per interval: append in place rather than through
  // display_name()'s temporaries when the function is known (the usual case).
  size_t size = 4 + sample.process_name.size();
  for (const Frame& f : sample.frames) size += 1 + (f.function.empty() ? 24 : f.function.size());
  std::string id;
  id.reserve(size);
  id += to_string(sample.kind);
  id += ':';
  id += sample.process_name;
  for (auto f = sample.frames.rbegin(); f != sample.frames.rend(); ++f) {
    id += ';';
    if (!f->function.empty())
      id += f->function;
    else
      id += f->display_name();
  }
  return id;
}

IntervalRecord summarize_interval(const Interval& interval, const std::map<std::string, double>& load,
                                  std::vector<uint32_t>* sample_to_stack,
                                  const std::function<bool(const std::string&)>& known) {
  IntervalRecord r;
  r.index = interval.index;
  r.start_unix_ns = interval.start_unix_ns;
  r.end_unix_ns = interval.end_unix_ns;
  r.load = load;
  std::unordered_map<std::string, uint32_t> by_id;
  if (sample_to_stack) sample_to_stack->clear();
  for (const StackSample& s : interval.stacks) {
    std::string id = stack_identity(s);
    auto [it, inserted] = by_id.try_emplace(id, static_cast<uint32_t>(r.stacks.size()));
    if (inserted) {
      StackTotal t;
      t.process = s.process_name;
      t.kind = s.kind;
      if (!known || !known(id)) {
        for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
          t.frames.push_back(f->display_name());
          t.modules.push_back(basename_of(f->module, f->kernel));
        }
      }
      t.id = std::move(id);
      r.stacks.push_back(std::move(t));
    }
    StackTotal& t = r.stacks[it->second];
    t.weight += weight_of(s);
    t.samples += s.count;
    if (sample_to_stack) sample_to_stack->push_back(it->second);
  }
  return r;
}

namespace {

json full_stack(const StackTotal& t) {
  return {{"id", t.id},          {"process", t.process}, {"kind", to_string(t.kind)}, {"frames", t.frames},
          {"modules", t.modules}, {"weight", t.weight},   {"samples", t.samples}};
}

json interval_json(const IntervalRecord& r, json stacks) {
  json load = json::object();
  for (const auto& [name, value] : r.load) load[name] = value;
  return {{"index", r.index},
          {"start_unix_ns", r.start_unix_ns},
          {"end_unix_ns", r.end_unix_ns},
          {"stacks", std::move(stacks)},
          {"load", std::move(load)}};
}

}  // namespace

json interval_to_json(const IntervalRecord& r) {
  json stacks = json::array();
  for (const StackTotal& t : r.stacks) stacks.push_back(full_stack(t));
  return interval_json(r, std::move(stacks));
}

void IntervalLogWriter::append(const IntervalRecord& r) {
  const uint64_t now = appended_ + 1;
  const uint64_t first_key = next_key_;
  json stacks = json::array();
  std::vector<uint64_t> added;  // hashes new in this record: undone if the line is not written
  for (const StackTotal& t : r.stacks) {
    auto [it, inserted] = keys_.try_emplace(std::hash<std::string>{}(t.id), Key{next_key_, now});
    if (inserted) {
      added.push_back(it->first);
      ++next_key_;
      json entry = full_stack(t);
      entry["key"] = it->second.key;
      stacks.push_back(std::move(entry));
    } else {
      it->second.last_seen = now;
      stacks.push_back({{"key", it->second.key}, {"weight", t.weight}, {"samples", t.samples}});
    }
  }
  try {
    out_.append(interval_json(r, std::move(stacks)));
  } catch (...) {
    for (uint64_t hash : added) keys_.erase(hash);
    next_key_ = first_key;
    throw;
  }
  appended_ = now;
  if (appended_ % kForgetEvery == 0) {
    for (auto it = keys_.begin(); it != keys_.end();)
      it = appended_ - it->second.last_seen >= kForgetAfter ? keys_.erase(it) : std::next(it);
  }
}

namespace {

IntervalRecord interval_from_json(const json& j, std::unordered_map<uint64_t, StackTotal>& keyed) {
  IntervalRecord r;
  try {
    r.index = j.at("index").get<uint64_t>();
    r.start_unix_ns = j.value("start_unix_ns", int64_t{0});
    r.end_unix_ns = j.value("end_unix_ns", int64_t{0});
    for (const json& s : j.at("stacks")) {
      if (s.contains("key") && !s.contains("id")) {
        uint64_t key = s.at("key").get<uint64_t>();
        auto it = keyed.find(key);
        if (it == keyed.end()) throw Error("stack key " + std::to_string(key) + " was never defined");
        StackTotal t = it->second;
        t.weight = s.at("weight").get<uint64_t>();
        t.samples = s.value("samples", t.weight);
        r.stacks.push_back(std::move(t));
        continue;
      }
      StackTotal t;
      t.id = s.at("id").get<std::string>();
      t.process = s.value("process", std::string());
      std::string kind = s.value("kind", std::string("on"));
      if (kind != "on" && kind != "off") throw Error("stack kind must be \"on\" or \"off\", not \"" + kind + "\"");
      t.kind = kind == "on" ? StackKind::kOnCpu : StackKind::kOffCpu;
      t.weight = s.at("weight").get<uint64_t>();
      t.samples = s.value("samples", t.weight);
      t.frames = s.value("frames", std::vector<std::string>());
      t.modules = s.value("modules", std::vector<std::string>());
      t.modules.resize(t.frames.size());
      if (s.contains("key")) keyed[s.at("key").get<uint64_t>()] = t;
      r.stacks.push_back(std::move(t));
    }
    if (j.contains("load")) {
      for (const auto& [name, value] : j.at("load").items()) {
        if (!value.is_number()) throw Error("load \"" + name + "\" is not a number");
        r.load[name] = value.get<double>();
      }
    }
  } catch (const json::exception& e) {
    throw Error(std::string("bad interval record: ") + e.what());
  }
  return r;
}

}  // namespace

std::vector<IntervalRecord> read_interval_log(const std::string& path) {
  std::vector<IntervalRecord> out;
  std::unordered_map<uint64_t, StackTotal> keyed;
  read_json_lines(path, [&](size_t line, const json& object) {
    try {
      out.push_back(interval_from_json(object, keyed));
    } catch (const Error& e) {
      throw_bad_line(path, line, e.what());
    }
  });
  return out;
}

}  // namespace stackwatch::localize
