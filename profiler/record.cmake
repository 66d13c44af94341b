# The record command: BPF loading, draining, process tracking, outputs.
add_library(stackwatch_profiler STATIC record_command_stub.cpp)
target_link_libraries(stackwatch_profiler PUBLIC stackwatch_commands)
target_link_libraries(stackwatch_commands PUBLIC stackwatch_profiler)
