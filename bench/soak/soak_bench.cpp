// Soak benchmark: `stackwatch record` on the whole machine (default flags:
// on- and off-CPU, 49 Hz, 5 s intervals) for --minutes while a churn workload
// starts short-lived processes and threads and execs many different binaries
// (/bin/true, /bin/echo, /usr/bin/env and copies of the churn program at
// --copies different paths, each a new module to snapshot and symbolize).
// Every 10 s it samples stackwatch's RSS (/proc/PID/status) and the entries
// of each of its kernel maps (found through /proc/PID/fdinfo, counted with
// `bpftool map dump`); at the end it prints the RSS after warm-up against the
// RSS at the end (the goal: at most 5 MB growth), the maps' peak occupancy and
// what stackwatch reported as dropped.
//
//   soak_bench [--minutes M] [--rate PROCS_PER_S] [--copies N] [-- RECORD_FLAGS...]
//
// RECORD_FLAGS are added to `stackwatch record -q -o DIR` (e.g. --on-cpu,
// --call-graph fp) to tell which part of it grows.
// Needs root. The churn is paced (--rate, default 200 processes a second)
// so that the machine stays usable by others while it runs.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// How often RSS and map occupancy are sampled.
constexpr int kSampleEveryS = 10;
// The goal of issue 9 for RSS growth after warm-up.
constexpr double kGoalGrowthMb = 5.0;

struct Flags {
  double minutes = 15;  // 5 of warm-up, 10 measured
  int rate = 200;    // churn processes started per second
  int copies = 20;   // copies of the churn program at distinct paths
  std::vector<std::string> record_args;  // after "--": more flags for stackwatch record
};

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soak_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--") {
      f.record_args.assign(argv + i + 1, argv + argc);
      break;
    } else if (a == "--minutes")
      f.minutes = std::stod(value());
    else if (a == "--rate")
      f.rate = std::stoi(value());
    else if (a == "--copies")
      f.copies = std::stoi(value());
    else {
      std::fprintf(stderr, "usage: soak_bench [--minutes M] [--rate PROCS_PER_S] [--copies N] [-- RECORD_FLAGS...]\n");
      std::exit(2);
    }
  }
  return f;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

long status_kb(pid_t pid, const std::string& field) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  return -1;
}

struct MapInfo {
  unsigned id = 0;
  std::string name, type;
  unsigned max_entries = 0;
};

// The BPF maps stackwatch holds open, from its fds' fdinfo (bpftool here
// cannot name a map's owner).
std::vector<MapInfo> maps_of(pid_t pid) {
  std::vector<unsigned> ids;
  std::string fdinfo = "/proc/" + std::to_string(pid) + "/fdinfo";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fdinfo, ec)) {
    std::istringstream in(slurp(e.path().string()));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("map_id:", 0) == 0) ids.push_back(static_cast<unsigned>(std::stoul(line.substr(7))));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<MapInfo> maps;
  nlohmann::json all = nlohmann::json::parse(run_capture("bpftool map show -j 2>/dev/null"), nullptr, false);
  if (!all.is_array()) return maps;
  for (const auto& m : all) {
    unsigned id = m.value("id", 0u);
    if (!std::binary_search(ids.begin(), ids.end(), id)) continue;
    maps.push_back({id, m.value("name", ""), m.value("type", ""), m.value("max_entries", 0u)});
  }
  return maps;
}

// Entries now in a map, counted as they stream out of `bpftool map dump -j`
// (one "key" per entry) without building the JSON: a full stack map is tens
// of megabytes of text. -1 for maps whose entries are not an occupancy
// (arrays are always full, ring buffers are not dumpable).
long entries_of(const MapInfo& m) {
  if (m.type != "hash" && m.type != "lru_hash" && m.type != "percpu_hash" && m.type != "stack_trace") return -1;
  FILE* p = popen(("bpftool map dump id " + std::to_string(m.id) + " -j 2>/dev/null").c_str(), "r");
  if (!p) return -1;
  static const std::string kKey = "\"key\"";
  std::string carry;
  long n = 0;
  char buf[65536];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
    std::string chunk = carry + std::string(buf, got);
    for (size_t at = chunk.find(kKey); at != std::string::npos; at = chunk.find(kKey, at + kKey.size())) ++n;
    // Keep a tail shorter than the token, so a token cut between two reads
    // is counted once, in the next round.
    carry = chunk.substr(chunk.size() - std::min(chunk.size(), kKey.size() - 1));
  }
  return pclose(p) == 0 ? n : -1;
}

// stacks.json's "_stackwatch" metadata (dropped counts, aged-out stacks).
nlohmann::json stackwatch_meta(const std::string& stacks_json) {
  nlohmann::json doc = nlohmann::json::parse(slurp(stacks_json), nullptr, false);
  if (doc.is_discarded() || !doc.contains("_stackwatch")) return nlohmann::json::object();
  return doc["_stackwatch"];
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse_flags(argc, argv);
  if (geteuid() != 0) {
    std::fprintf(stderr, "soak_bench: needs root (stackwatch record loads BPF)\n");
    return 1;
  }
  std::string work = (fs::temp_directory_path() / ("stackwatch-soak-" + std::to_string(getpid()))).string();
  fs::remove_all(work);
  fs::create_directories(work + "/bin");
  // Many binaries: every exec of a new path is a new module to snapshot.
  std::vector<std::string> programs = {"/bin/true", "/bin/echo", "/usr/bin/env"};
  for (int i = 0; i < flags.copies; ++i) {
    std::string copy = work + "/bin/churn_copy_" + std::to_string(i);
    fs::copy_file(SOAK_CHURN, copy, fs::copy_options::overwrite_existing);
    fs::permissions(copy, fs::perms(0755));
    programs.push_back(copy);
  }

  std::string out = work + "/out";
  std::vector<std::string> record = {STACKWATCH_BIN, "record", "-q", "-o", out};
  record.insert(record.end(), flags.record_args.begin(), flags.record_args.end());
  pid_t sw = spawn(record, work + "/stackwatch.log");
  std::this_thread::sleep_for(std::chrono::seconds(3));  // BPF loaded and attached
  std::string shown;
  for (const auto& a : record) shown += (shown.empty() ? "" : " ") + a;
  std::printf("soak: %s (pid %d) on the whole machine for %.1f min, churn %d processes/s, %zu binaries\n",
              shown.c_str(), sw, flags.minutes, flags.rate, programs.size());
  // RSS split: anonymous memory (heap, inflated images, BPF ring buffers)
  // and file pages (mapped binaries and debug files, dropped under pressure).
  std::printf("%8s %9s %9s %9s %9s  %s\n", "t (s)", "RSS (MB)", "HWM (MB)", "anon (MB)", "file (MB)",
              "map entries (name: now/max)");

  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(flags.minutes * 60));
  // Warm-up: the longest window stackwatch keeps by design must be full.
  // The longest is the interval log's: a stack's key is kept until it has
  // been absent 40 records (IntervalLogWriter::kForgetAfter, checked every
  // 8: 48 intervals, 240 s at the default 5 s); then the detector's 24+8
  // intervals, the localizer's baseline of 21, the live view of the stack
  // totals (6) and its aged table filling up to its bound. Five minutes;
  // shorter runs take their first half. (With 120 s, a 10-minute run read
  // +7.1 MB "growth" that was these tables filling: 64.1 MB at 120 s, 70.7
  // at 300 s, 71.3 at 590 s.)
  double warmup_s = std::min(300.0, flags.minutes * 60 / 2);
  long rss_after_warmup = -1, rss_end = -1, rss_max = 0;
  double warmup_at = 0;
  std::map<std::string, std::pair<long, unsigned>> peak;  // name -> (peak entries, max_entries)
  long batches = 0;
  auto next_sample = start;
  bool alive = true;
  while (Clock::now() < end && alive) {
    // One paced batch of churn a second: `rate` processes, every 4th an exec.
    auto batch_start = Clock::now();
    std::vector<std::string> churn = {SOAK_CHURN, std::to_string(flags.rate), "0.9"};
    churn.insert(churn.end(), programs.begin(), programs.end());
    pid_t c = spawn(churn, work + "/churn.log");
    waitpid(c, nullptr, 0);
    ++batches;
    if (Clock::now() >= next_sample) {
      double t = std::chrono::duration<double>(Clock::now() - start).count();
      long rss = status_kb(sw, "VmRSS"), hwm = status_kb(sw, "VmHWM");
      long anon = status_kb(sw, "RssAnon"), file = status_kb(sw, "RssFile");
      if (rss < 0) {
        alive = false;
        break;
      }
      rss_max = std::max(rss_max, rss);
      if (rss_after_warmup < 0 && t >= warmup_s) {
        rss_after_warmup = rss;
        warmup_at = t;
      }
      rss_end = rss;
      std::printf("%8.0f %9.1f %9.1f %9.1f %9.1f ", t, rss / 1024.0, hwm / 1024.0, anon / 1024.0, file / 1024.0);
      for (const MapInfo& m : maps_of(sw)) {
        long n = entries_of(m);
        if (n < 0) continue;
        auto& p = peak[m.name];
        p.first = std::max(p.first, n);
        p.second = m.max_entries;
        std::printf(" %s:%ld/%u", m.name.c_str(), n, m.max_entries);
      }
      std::printf("\n");
      std::fflush(stdout);
      next_sample += std::chrono::seconds(kSampleEveryS);
    }
    auto spent = Clock::now() - batch_start;
    if (spent < std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::seconds(1) - spent);
  }
  if (!alive) {
    std::printf("soak: stackwatch died; its log:\n%s\n", slurp(work + "/stackwatch.log").c_str());
    return 1;
  }
  kill(sw, SIGINT);
  int status = 0;
  waitpid(sw, &status, 0);
  double growth_mb = (rss_end - rss_after_warmup) / 1024.0;
  long processes = 0, threads = 0, failed = 0;
  std::istringstream churn_log(slurp(work + "/churn.log"));
  for (std::string line; std::getline(churn_log, line);) {
    long p = 0, t = 0, f = 0;
    if (std::sscanf(line.c_str(), "churn: %ld processes, %ld threads, %ld failed", &p, &t, &f) == 3) {
      processes += p;
      threads += t;
      failed += f;
    }
  }
  std::printf("\nsoak: %.1f min, %ld churn batches: %ld processes, %ld threads, %ld failed\n", flags.minutes,
              batches, processes, threads, failed);
  std::printf("RSS after warm-up (t=%.0f s): %.1f MB; at the end: %.1f MB; growth %.1f MB (goal: at most %.0f MB: "
              "%s); peak %.1f MB\n",
              warmup_at, rss_after_warmup / 1024.0, rss_end / 1024.0, growth_mb, kGoalGrowthMb,
              growth_mb <= kGoalGrowthMb ? "met" : "NOT met", rss_max / 1024.0);
  std::printf("kernel map peak occupancy (sampled every %d s):\n", kSampleEveryS);
  for (const auto& [name, p] : peak)
    std::printf("  %-14s %7ld / %-7u (%.0f%%)\n", name.c_str(), p.first, p.second,
                p.second ? 100.0 * p.first / p.second : 0.0);
  nlohmann::json meta = stackwatch_meta(out + "/stacks.json");
  std::printf("dropped (stacks.json _stackwatch.dropped.total): %llu\n",
              static_cast<unsigned long long>(meta.value(nlohmann::json::json_pointer("/dropped/total"), uint64_t{0})));
  // The user-space stack table: live entries, aged (merged) ones, folded tail.
  if (meta.contains("aged_out")) {
    nlohmann::json table = meta["aged_out"];
    table.erase("note");
    std::printf("stack table (stacks.json _stackwatch.aged_out): %s\n", table.dump().c_str());
  }
  std::printf("stackwatch exit status: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
  fs::remove_all(work + "/bin");
  return 0;
}
