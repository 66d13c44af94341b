# libFuzzer targets, one per parser of untrusted input (tests/fuzz/): with
# -DSTACKWATCH_FUZZ=ON and clang (CC=clang CXX=clang++, a separate build
# directory; scripts/fuzz.sh does both), every library of the tree is compiled
# with -fsanitize=fuzzer-no-link,address,undefined (coverage feedback and
# checks, without libFuzzer's main) and each fuzz target is linked with
# -fsanitize=fuzzer,address,undefined. ctest -L fuzz runs each target for a
# bounded time on its checked-in seed corpus and its regressions.
option(STACKWATCH_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
set(STACKWATCH_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs under ctest -L fuzz")
# A fixed seed makes a CI run try the same inputs in the same order every
# time (a red CI is then a real, reproducible finding, not bad luck); 0 lets
# libFuzzer pick one, for longer exploratory runs.
set(STACKWATCH_FUZZ_SEED 1 CACHE STRING "libFuzzer -seed under ctest -L fuzz (0: random)")
if(STACKWATCH_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "STACKWATCH_FUZZ needs clang (libFuzzer): configure a separate build directory "
                        "with CC=clang CXX=clang++ (scripts/fuzz.sh does)")
  endif()
  if(STACKWATCH_SANITIZE)
    message(FATAL_ERROR "STACKWATCH_FUZZ already builds with address,undefined: leave STACKWATCH_SANITIZE empty")
  endif()
  set(STACKWATCH_FUZZ_SANITIZERS address,undefined)
  add_compile_options(-fsanitize=fuzzer-no-link,${STACKWATCH_FUZZ_SANITIZERS} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${STACKWATCH_FUZZ_SANITIZERS})
  # ctest must see the fuzz tests even when the unit tests are not built.
  enable_testing()
  message(STATUS "stackwatch: libFuzzer targets, ${STACKWATCH_FUZZ_SECONDS} s each under ctest")
endif()
