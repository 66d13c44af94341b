// stackwatch record: the command line of the recorder.
#include <CLI/CLI.hpp>

#include "profiler/commands.h"
#include "profiler/record_session.h"
#include "recording/error.h"

namespace stackwatch::cli {

void register_record_command(CLI::App& app) {
  auto options = std::make_shared<profiler::RecordOptions>();
  auto pid_list = std::make_shared<std::vector<std::string>>();
  auto only_on = std::make_shared<bool>(false);
  auto only_off = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("record", "Sample on-CPU and off-CPU stacks, kernel and user, per process");
  cmd->add_option("-p,--pid", *pid_list, "Record only these processes (comma-separated pids)")->delimiter(',');
  cmd->add_flag("--children", options->children, "With -p: also record children the processes start");
  cmd->add_option("-G,--cgroup", options->cgroup,
                  "Record the processes of this cgroup (v1 or v2 path, e.g. /sys/fs/cgroup/cpu/mygroup)");
  cmd->add_option("--load-threshold", options->load_threshold,
                  "Mark intervals whose load crosses this (\"80\" = cpu_util>80, or e.g. \"load1>4,psi_io_some>10\") "
                  "and keep their stacks in load-spikes.folded");
  cmd->add_option("-F,--frequency", options->hz, "On-CPU sampling frequency in Hz per CPU")->default_val(49);
  cmd->add_flag("--on-cpu", *only_on, "Record only on-CPU stacks");
  cmd->add_flag("--off-cpu", *only_off, "Record only off-CPU stacks");
  cmd->add_option("-i,--interval", options->interval_s, "Seconds between reports and output rewrites")
      ->default_val(5.0);
  cmd->add_option("-d,--duration", options->duration_s, "Stop after this many seconds (0: until Ctrl-C)")
      ->default_val(0.0);
  cmd->add_option("-o,--output", options->output_dir, "Output directory")->default_val("stackwatch-out");
  cmd->add_option("--top", options->top, "Stacks printed per interval")->default_val(5);
  cmd->add_option("--max-stacks", options->max_stacks,
                  "Distinct stacks per interval the kernel maps hold (default: from -F and -i)");
  cmd->add_option("--min-block-us", options->min_block_us, "Off-CPU: ignore blocks shorter than this (microseconds)")
      ->default_val(1000);
  cmd->add_flag("--memory", options->memory,
                 "Also record memory: bytes still allocated per allocating stack (libc allocator uprobes), bad frees, "
                 "user page faults (needs -p or a COMMAND; each allocator call traps into the kernel: ~16 us per malloc/free pair, see README)");
  cmd->add_option("--memory-rate", options->memory_rate,
                  "With --memory: at most this many allocator events per second per CPU; beyond it events are "
                  "dropped and counted (0: no limit)");
  cmd->add_flag("--io", options->io,
                "Also record I/O: bytes, calls and time per stack of read/write/send/recv/fsync system calls "
                "(with the fd's kind), and block I/O latency per issuing stack");
  cmd->add_flag("-q,--quiet", options->quiet, "Print nothing per interval");
  auto no_detect = std::make_shared<bool>(false), no_probes = std::make_shared<bool>(false);
  cmd->add_flag("--no-detect", *no_detect, "Do not run the anomaly detector and localizer");
  cmd->add_flag("--no-probes", *no_probes, "Localize without attaching latency probes to the suspects");
  cmd->add_flag("--baseline-probes", options->baseline_probes,
                "While nothing is anomalous, probe the busiest functions (at most 8) for one interval in ten, so "
                "that an anomaly's latencies are compared with measured ones from before (each probed call costs "
                "~10-15 us while probed; DWARF-mode stacks under a probed call lose their outer frames)");
  cmd->add_option("--probe-seconds", options->probe_seconds, "How long latency probes stay attached at most")
      ->default_val(10.0)
      ->check(CLI::Range(0.1, 3600.0));
  auto call_graph = std::make_shared<std::string>("dwarf");
  cmd->add_option("--call-graph", *call_graph,
                  "User stacks: dwarf (copy the stack, unwind with .eh_frame: complete without frame pointers) "
                  "or fp (kernel frame-pointer walk, aggregated in the kernel)")
      ->check(CLI::IsMember({"dwarf", "fp"}))
      ->default_val("dwarf");
  cmd->add_option("command", options->command, "-- COMMAND ARGS...: start COMMAND and record it and its children");
  cmd->footer(
      "Writes stacks.json (stack_count format), oncpu.folded, offcpu.folded and wall.folded into the output\n"
      "directory every interval (with --memory: memory.folded, faults.folded; with --io: io.folded,\n"
      "blockio.folded); Ctrl-C, SIGTERM, -d or the COMMAND's exit write the final files.\n"
      "Needs root, or CAP_BPF and CAP_PERFMON.\n"
      "Examples:\n"
      "  stackwatch record -d 10                      # every process, 10 s\n"
      "  stackwatch record -p 1234 -F 99 -i 1         # one process, 99 Hz, report every second\n"
      "  stackwatch record -o out -- ./myserver --port 8080\n"
      "  stackwatch record --memory --io -p 1234       # who holds the memory, who does the I/O");
  cmd->callback([options, pid_list, only_on, only_off, call_graph, no_detect, no_probes] {
    options->detect = !*no_detect;
    options->probes = !*no_probes;
    options->dwarf = *call_graph == "dwarf";
    for (const std::string& p : *pid_list) {
      try {
        size_t used = 0;
        unsigned long v = std::stoul(p, &used);
        if (used != p.size() || v > 0x3fffffff) throw std::invalid_argument(p);
        options->pids.push_back(static_cast<uint32_t>(v));
      } catch (const std::exception&) {
        throw Error("-p " + p + ": not a process id");
      }
    }
    if (*only_on && !*only_off) options->off_cpu = false;
    if (*only_off && !*only_on) options->on_cpu = false;
    if (*only_on && *only_off) options->on_cpu = options->off_cpu = false;
    int status = profiler::run_record(*options);
    if (status != 0) throw CLI::RuntimeError(status);
  });
}

}  // namespace stackwatch::cli
