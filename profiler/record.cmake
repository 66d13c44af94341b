# The record command: BPF loading, draining, process tracking, outputs.
add_library(stackwatch_profiler STATIC
  command_launcher.cpp
  copy_fallback.cpp
  exited_processes.cpp
  libbpf_logger.cpp
  live_localizer.cpp
  baseline_history.cpp
  map_drain.cpp
  memory_sampler.cpp
  io_sampler.cpp
  offcpu_sampler.cpp
  offcpu_stack_ids.cpp
  oncpu_sampler.cpp
  perf_events.cpp
  process_tracker.cpp
  record_command.cpp
  record_options.cpp
  record_outputs.cpp
  record_session.cpp
  stack_copies.cpp
  stack_resolver.cpp
  stack_totals.cpp
  frame_table.cpp
  uprobe_target.cpp
  latency_probes.cpp
  latency_baseline.cpp
  probe_command.cpp)
target_link_libraries(stackwatch_profiler PUBLIC stackwatch_recording stackwatch_load stackwatch_localizer stackwatch_symbolizer stackwatch_unwinder stackwatch_flamegraph
                      stackwatch_syscalls stackwatch_bpf CLI11::CLI11)
add_dependencies(stackwatch_profiler oncpu_skel proc_skel offcpu_skel latency_skel memory_skel)
add_dependencies(stackwatch_profiler io_skel)
# `stackwatch probe` (probe_command.cpp) exists only where BPF is built.
set_property(DIRECTORY APPEND PROPERTY COMPILE_DEFINITIONS STACKWATCH_HAVE_PROBE_COMMAND)
