# Builds BPF programs into libbpf skeleton headers.
#
# vmlinux.h is generated from the running kernel's BTF (never committed), so
# CO-RE relocations match whatever kernel the build runs on. Each step writes
# to a temporary file and renames it, so a failed step never leaves a
# truncated header behind for the next build to trust.

find_program(BPFTOOL_EXECUTABLE bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(BPF_CLANG_EXECUTABLE NAMES clang clang-14 REQUIRED)

set(STACKWATCH_BTF_PATH "/sys/kernel/btf/vmlinux" CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")
set(BPF_GENERATED_DIR "${CMAKE_BINARY_DIR}/bpf_generated")
file(MAKE_DIRECTORY "${BPF_GENERATED_DIR}")

add_custom_command(
  OUTPUT "${BPF_GENERATED_DIR}/vmlinux.h"
  COMMAND sh -c "'${BPFTOOL_EXECUTABLE}' btf dump file '${STACKWATCH_BTF_PATH}' format c > vmlinux.h.tmp && mv vmlinux.h.tmp vmlinux.h"
  WORKING_DIRECTORY "${BPF_GENERATED_DIR}"
  COMMENT "Generating vmlinux.h from ${STACKWATCH_BTF_PATH}"
  VERBATIM)
add_custom_target(bpf_vmlinux_h DEPENDS "${BPF_GENERATED_DIR}/vmlinux.h")

# bpf_skeleton(NAME SOURCE [DEPENDS headers...])
# Produces ${BPF_GENERATED_DIR}/NAME.skel.h (struct NAME_bpf) and a target NAME_skel.
function(bpf_skeleton name source)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  get_filename_component(src "${source}" ABSOLUTE)
  set(obj "${BPF_GENERATED_DIR}/${name}.bpf.o")
  set(linked "${BPF_GENERATED_DIR}/${name}.linked.o")
  set(skel "${BPF_GENERATED_DIR}/${name}.skel.h")
  execute_process(COMMAND uname -m OUTPUT_VARIABLE arch OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(arch STREQUAL "x86_64")
    set(target_arch x86)
  elseif(arch STREQUAL "aarch64")
    set(target_arch arm64)
  else()
    set(target_arch "${arch}")
  endif()
  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${BPF_CLANG_EXECUTABLE}" -g -O2 -target bpf -D__TARGET_ARCH_${target_arch}
            -I "${BPF_GENERATED_DIR}" -I "${CMAKE_SOURCE_DIR}/bpf"
            -c "${src}" -o "${obj}.tmp"
    COMMAND mv "${obj}.tmp" "${obj}"
    COMMAND "${BPFTOOL_EXECUTABLE}" gen object "${linked}.tmp" "${obj}"
    COMMAND mv "${linked}.tmp" "${linked}"
    COMMAND sh -c "'${BPFTOOL_EXECUTABLE}' gen skeleton '${linked}' name ${name}_bpf > '${skel}.tmp' && mv '${skel}.tmp' '${skel}'"
    DEPENDS "${src}" "${BPF_GENERATED_DIR}/vmlinux.h" ${ARG_DEPENDS}
    WORKING_DIRECTORY "${BPF_GENERATED_DIR}"
    COMMENT "BPF skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS "${skel}")
endfunction()
