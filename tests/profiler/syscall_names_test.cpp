// The generated system call table (profiler/syscall_names.h).
#include "profiler/syscall_names.h"

#include <sys/syscall.h>

#include <gtest/gtest.h>

using stackwatch::profiler::syscall_name;

TEST(SyscallNames, NamesTheCallsByTheHeadersNumbers) {
  EXPECT_EQ(syscall_name(SYS_read), "read");
  EXPECT_EQ(syscall_name(SYS_write), "write");
  EXPECT_EQ(syscall_name(SYS_fdatasync), "fdatasync");
  EXPECT_EQ(syscall_name(SYS_futex), "futex");
  EXPECT_EQ(syscall_name(SYS_io_uring_enter), "io_uring_enter");
}

TEST(SyscallNames, AnUnknownNumberIsSaidAsANumber) {
  EXPECT_EQ(syscall_name(99999), "syscall 99999");
  EXPECT_EQ(syscall_name(0xffffffffu), "syscall 4294967295");
}
