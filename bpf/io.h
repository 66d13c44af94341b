/* Structs and constants of the I/O program (io.bpf.c), shared with user
 * space (profiler/io_sampler.cpp), which never re-declares them and
 * static_asserts their sizes.
 *
 * One aggregation entry per (thread, stacks, operation, fd kind): system
 * calls that move bytes or flush a file, and block requests by the stack
 * that submitted them.
 */
#ifndef STACKWATCH_BPF_IO_H
#define STACKWATCH_BPF_IO_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "stackwatch.h"

/* What an entry counts. Names for user space: sw_io_op_name(). */
enum sw_io_op {
  SW_IO_READ = 0,
  SW_IO_WRITE = 1,
  SW_IO_PREAD64 = 2,
  SW_IO_PWRITE64 = 3,
  SW_IO_READV = 4,
  SW_IO_WRITEV = 5,
  SW_IO_SENDTO = 6,
  SW_IO_RECVFROM = 7,
  SW_IO_SENDMSG = 8,
  SW_IO_RECVMSG = 9,
  SW_IO_FSYNC = 10,
  SW_IO_FDATASYNC = 11,
  SW_IO_PREADV = 12,
  SW_IO_PWRITEV = 13,
  SW_IO_BLOCK_READ = 14,  /* block requests, issue to completion */
  SW_IO_BLOCK_WRITE = 15,
  SW_IO_BLOCK_FLUSH = 16, /* cache flushes (fsync's REQ_PREFLUSH/FUA become these) */
  SW_IO_OP_MAX = 17,
};

/* What the file descriptor of a system call refers to, from its inode's
 * type (S_IFMT); read at syscall entry. */
enum sw_io_fd_kind {
  SW_FD_NONE = 0,   /* block requests: no descriptor */
  SW_FD_FILE = 1,   /* S_IFREG (any filesystem, tmpfs included) */
  SW_FD_SOCKET = 2, /* S_IFSOCK */
  SW_FD_PIPE = 3,   /* S_IFIFO: pipes and FIFOs */
  SW_FD_DEVICE = 4, /* S_IFCHR / S_IFBLK: terminals, /dev/null, raw disks */
  SW_FD_OTHER = 5,  /* directories, anonymous inodes (eventfd, ...), closed fds */
  SW_FD_KIND_MAX = 6,
};

struct sw_io_key {
  __u32 tgid;
  __u32 tid;
  __s32 kernel_stack_id; /* block requests only; -EFAULT for system calls */
  __s32 user_stack_id;   /* < 0: -errno, or none (kernel thread) */
  __u32 op;              /* enum sw_io_op */
  __u32 fd_kind;         /* enum sw_io_fd_kind */
  char comm[SW_COMM_LEN];
  /* The return address of the function that issued the system call when it
   * keeps no frame pointer there (a sw_io_site): the frame the user stack
   * lacks, right above its innermost frame. 0: none needed or not found. */
  __u64 caller;
};

/* A `syscall` instruction in code without a frame pointer (glibc's write()
 * and the like), by file: user space finds them in each executable file
 * from its CFI (unwinder/syscall_sites.h) and maps them to where the
 * return address is (the value: its offset from the user rsp). */
struct sw_io_site {
  __u64 ino;
  __u64 file_offset; /* of the instruction after `syscall`: the saved user ip */
  __u32 dev;         /* the inode's superblock s_dev, kernel encoding (major << 20 | minor) */
  __u32 pad;
};

struct sw_io_value {
  __u64 count;    /* calls, or completed block requests */
  __u64 bytes;    /* bytes moved: positive return values; block: completed bytes */
  __u64 total_ns; /* summed time in the calls; block: issue to completion */
  char process_comm[SW_COMM_LEN];
};

#endif /* STACKWATCH_BPF_IO_H */
