# The localizer (issue 7): call graph, suspect ranking, root-cause hints and
# the offline `stackwatch localize DIR` pipeline. Its own library so that
# the detector (stackwatch_localize) builds and tests without Boost.Graph.
add_library(stackwatch_localizer STATIC
  ${CMAKE_SOURCE_DIR}/localize/call_graph.cpp
  ${CMAKE_SOURCE_DIR}/localize/suspect_ranking.cpp
  ${CMAKE_SOURCE_DIR}/localize/root_cause_hint.cpp
  ${CMAKE_SOURCE_DIR}/localize/baseline_candidates.cpp
  ${CMAKE_SOURCE_DIR}/localize/localize_pipeline.cpp
  ${CMAKE_SOURCE_DIR}/localize/memory_growth.cpp)
target_include_directories(stackwatch_localizer PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(stackwatch_localizer PUBLIC stackwatch_localize stackwatch_recording Boost::boost
                      nlohmann_json::nlohmann_json)
