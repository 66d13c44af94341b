# Sanitized builds: -DSTACKWATCH_SANITIZE=address,undefined compiles and links
# every target of the tree with those sanitizers (scripts/sanitize.sh runs the
# unit tests in such a build). Empty (the default) adds nothing.
#
# Frame pointers so that the reports' stacks are complete and cheap to take;
# -fno-sanitize-recover so that undefined behaviour stops the test that hit it
# instead of printing a line that a passing ctest run would hide.
#
# Test fixtures (any target with a source under tests/fixtures/) are left
# alone: they are the programs under observation, built with exactly the
# flags their tests depend on (lines, inlining, frame pointers), and some
# read their own stack on purpose (the unwinder's fixtures copy it), which
# AddressSanitizer would report.
set(STACKWATCH_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined (empty: none)")

function(stackwatch_sanitize_targets dir)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    stackwatch_sanitize_targets(${sub})
  endforeach()
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
      continue()
    endif()
    get_target_property(sources ${target} SOURCES)
    get_target_property(source_dir ${target} SOURCE_DIR)
    set(fixture FALSE)
    foreach(source ${sources})
      if(NOT IS_ABSOLUTE "${source}")
        set(source "${source_dir}/${source}")
      endif()
      if(source MATCHES "/tests/fixtures/")
        set(fixture TRUE)
      endif()
    endforeach()
    if(fixture)
      continue()
    endif()
    target_compile_options(${target} PRIVATE -fsanitize=${STACKWATCH_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    if(type MATCHES "^(EXECUTABLE|SHARED_LIBRARY|MODULE_LIBRARY)$")
      target_link_options(${target} PRIVATE -fsanitize=${STACKWATCH_SANITIZE})
    endif()
  endforeach()
endfunction()

if(STACKWATCH_SANITIZE)
  # At the end of the top-level CMakeLists.txt, when every target exists.
  cmake_language(DEFER CALL stackwatch_sanitize_targets ${CMAKE_SOURCE_DIR})
  message(STATUS "stackwatch: sanitizers ${STACKWATCH_SANITIZE} (test fixtures excluded)")
endif()
