# The machine-load side of the record command (load_monitor.h): /proc/stat,
# /proc/loadavg and PSI per interval, series.csv and processes.csv, the
# --load-threshold decision, and cgroup membership. No BPF, no privileges:
# built and tested with STACKWATCH_BPF=OFF too.
add_library(stackwatch_load STATIC
  text_fields.cpp
  proc_reader.cpp
  proc_stat_parser.cpp
  loadavg_parser.cpp
  pressure_parser.cpp
  load_snapshot.cpp
  load_monitor.cpp
  load_summary.cpp
  load_threshold.cpp
  csv_cells.cpp
  load_series_writer.cpp
  process_series_writer.cpp
  cgroup_members.cpp)
target_link_libraries(stackwatch_load PUBLIC stackwatch_recording)
