// Frameless system call sites of a module: the `syscall` instructions that
// sit in code keeping no frame pointer (glibc's write(), read(), fsync() and
// the other thin wrappers, the generic syscall(), Go's raw syscalls).
//
// Why: a stack walked with frame pointers from a system call's registers
// starts at the user ip and follows rbp. Inside such a wrapper rbp is still
// the caller's frame, so the walk goes straight from the wrapper to the
// caller's caller: `main -> write_data -> write` reads as `main -> write`.
// The CFI of the site says where the return address is instead ([rsp + N]);
// the I/O program reads it there for the sites listed here (bpf/io.bpf.c)
// and user space puts it back as the wrapper's caller.
//
// Sites are found by looking for the two bytes of `syscall` (0f 05) in the
// executable segments: a match inside another instruction only costs an
// entry that no system call ever returns to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stackwatch::unwinder {

struct SyscallSite {
  // File offset of the instruction after `syscall`: the user ip a system
  // call's saved registers hold.
  uint64_t file_offset = 0;
  // The return address of the function is at [rsp + ra_sp_offset] there.
  uint32_t ra_sp_offset = 0;
};

// The frameless sites of the ELF file open at fd (not taken over), in file
// order. CFI from .eh_frame, else .debug_frame (of the file, or of its debug
// file under debug_root when not empty). Empty when the file is not ELF,
// has no CFI or no such site.
std::vector<SyscallSite> frameless_syscall_sites(int fd, const std::string& debug_root);

}  // namespace stackwatch::unwinder
