# The record command: BPF loading, draining, process tracking, outputs.
add_library(stackwatch_profiler STATIC
  command_launcher.cpp
  libbpf_logger.cpp
  map_drain.cpp
  offcpu_sampler.cpp
  oncpu_sampler.cpp
  perf_events.cpp
  process_tracker.cpp
  record_command.cpp
  record_options.cpp
  record_outputs.cpp
  record_session.cpp
  stack_resolver.cpp
  stack_totals.cpp)
target_link_libraries(stackwatch_profiler PUBLIC stackwatch_recording stackwatch_symbolizer stackwatch_flamegraph
                      stackwatch_bpf CLI11::CLI11)
add_dependencies(stackwatch_profiler oncpu_skel proc_skel offcpu_skel)
