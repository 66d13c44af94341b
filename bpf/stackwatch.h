/* Structs and constants shared by the BPF programs and user space.
 *
 * User space never re-declares these: profiler/ includes this header and
 * static_asserts the sizes. Names are prefixed sw_ because vmlinux.h already
 * defines `struct key` and friends.
 */
#ifndef STACKWATCH_BPF_STACKWATCH_H
#define STACKWATCH_BPF_STACKWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SW_COMM_LEN 16
/* The kernel's stack map depth limit (sysctl kernel.perf_event_max_stack
 * defaults to 127); deeper stacks are truncated by the kernel itself. */
#define SW_MAX_STACK_DEPTH 127
/* Counts and stack maps are double-buffered: BPF writes to the active one
 * while user space drains the other, so nothing is lost to a race. */
#define SW_NUM_BUFFERS 2

/* Bytes of user stack copied per sample for DWARF unwinding in user space:
 * enough for the deepest stacks of ordinary programs (a 16-frame C++ stack
 * uses 2-4 KiB); deep recursion beyond it ends "read outside the copied
 * stack" and is counted. */
#define SW_USER_STACK_BYTES 16384

/* Task states as recorded at switch-out (a subset of the kernel's). */
enum sw_task_state {
  SW_STATE_RUNNING = 0,         /* preempted while runnable */
  SW_STATE_INTERRUPTIBLE = 1,   /* sleeping: waits on sockets, timers, futexes */
  SW_STATE_UNINTERRUPTIBLE = 2, /* usually disk I/O */
  SW_STATE_OTHER = 3,
};

enum sw_stack_kind {
  SW_KIND_ON_CPU = 0,
  SW_KIND_OFF_CPU = 1,
  SW_KIND_IO = 2, /* an I/O system call (bpf/io.bpf.c): one call, its io_* fields */
  SW_KIND_PAGE_FAULT = 3, /* a user page fault (bpf/memory.bpf.c) */
};

/* The in-kernel aggregation key: one entry per (thread, stacks, state). */
struct sw_stack_key {
  __u32 tgid;
  __u32 tid;
  __s32 kernel_stack_id; /* < 0: -errno from bpf_get_stackid, or none */
  __s32 user_stack_id;   /* < 0: -errno, or none (kernel thread) */
  __u32 state;           /* enum sw_task_state; 0 for on-CPU samples */
  char comm[SW_COMM_LEN]; /* the thread's comm at sample time */
};

struct sw_stack_value {
  __u64 count;                    /* samples, or off-CPU events */
  __u64 total_ns;                 /* off-CPU: blocked nanoseconds */
  char process_comm[SW_COMM_LEN]; /* the group leader's comm at first sample */
};

/* Why a sample could not be recorded fully; a per-CPU array indexed by these. */
enum sw_drop_reason {
  SW_DROP_KERNEL_STACK = 0, /* bpf_get_stackid (kernel) failed, not -EFAULT */
  SW_DROP_USER_STACK = 1,   /* bpf_get_stackid (user) failed for a user task */
  SW_DROP_STACK_MAP_FULL = 2, /* -EEXIST / -ENOMEM: the stack map is too small */
  SW_DROP_COUNTS_FULL = 3,  /* the counts hash is full: the sample is lost */
  SW_DROP_EVENTS_FULL = 4,  /* the process-event ring buffer was full */
  SW_DROP_OTHER = 5,
  /* DWARF mode: the stack-copy ring was full, so the event was counted in
   * the kernel under its frame-pointer stack instead (kept, but its outer
   * frames may be missing in code without frame pointers) */
  SW_DROP_COPY_FALLBACK = 6,
  SW_DROP_MAX = 7,
};

enum sw_proc_event_type {
  SW_EVENT_FIRST_SEEN = 1, /* first sample of a process: snapshot its maps now */
  SW_EVENT_FORK = 2,       /* a new process (not thread) of a followed parent */
  SW_EVENT_EXEC = 3,       /* mappings and name changed */
  SW_EVENT_EXIT = 4,       /* the whole process exited */
};

struct sw_proc_event {
  __u32 type; /* enum sw_proc_event_type */
  __u32 tgid;
  __u32 tid;
  __u32 parent_tgid;
  char comm[SW_COMM_LEN];
};

/* x86_64 user registers the CFI unwinder needs (unwinder::UserRegs). */
struct sw_user_regs {
  __u64 ip, sp, bp, bx, r12, r13, r14, r15;
};

/* One off-CPU block waiting for its user stack (see offcpu.bpf.c). */
struct sw_off_block {
  __s32 kernel_stack_id; /* in the off-CPU stack map */
  __s32 user_stack_id;   /* frame-pointer walk: the fallback */
  __u32 state;           /* enum sw_task_state */
  __u32 pad;
  __u64 off_ns;
};

/* A thread may block several times in one system call (an fsync waits for
 * each of its writes): that many blocks share one user stack copy. */
#define SW_MAX_PENDING_BLOCKS 4

/* Bytes a record keeps for its kernel stack: SW_MAX_STACK_DEPTH addresses,
 * rounded up to a power of two (the verifier bounds the user stack's offset
 * after them with a mask). */
#define SW_KERNEL_STACK_BYTES 1024

/* sw_stack_sample.flags */
/* The user stack was copied only up to the top the thread's earlier stacks
 * reached (stack_tops in common.bpf.h), not to the end of its mapping. */
#define SW_SAMPLE_STACK_TRIMMED 1u

/* One sample whose user stack user space unwinds with DWARF CFI (the
 * frame-pointer walk of the kernel stops at the first function built
 * without frame pointers). Sent through a ring buffer: such stacks cannot
 * be aggregated before they are unwound. A record holds the fields up to
 * `data`, then kernel_depth kernel addresses and stack_len bytes of user
 * stack, not the whole array (most samples have a short kernel stack or
 * none, and most stacks use a few KiB): readers check the record's size
 * against both. */
struct sw_stack_sample {
  __u32 tgid;
  __u32 tid;
  __u32 kind;  /* enum sw_stack_kind */
  __u32 state; /* off-CPU: enum sw_task_state */
  __u64 off_ns;
  __s32 kernel_stack_id; /* off-CPU: id in the off-CPU stack map; on-CPU: -1 */
  __u32 kernel_depth;    /* on-CPU: kernel addresses at the start of data */
  char comm[SW_COMM_LEN];
  char process_comm[SW_COMM_LEN];
  struct sw_user_regs regs;
  __s32 user_stack_id;   /* frame-pointer walk, the fallback (or -errno) */
  __u32 stack_len;       /* bytes of user stack in data, after the kernel addresses */
  __u32 nblocks;         /* off-CPU: the blocks this user stack belongs to */
  __u32 flags;           /* SW_SAMPLE_* */
  __u64 io_bytes;        /* I/O: bytes the call moved */
  __u64 io_ns;           /* I/O: time in the call */
  __u32 io_op;           /* I/O: enum sw_io_op (bpf/io.h) */
  __u32 io_fd_kind;      /* I/O: enum sw_io_fd_kind */
  struct sw_off_block blocks[SW_MAX_PENDING_BLOCKS];
  /* kernel_depth * 8 bytes of kernel addresses, then stack_len bytes of
   * user stack from regs.sp up (8-byte aligned: the addresses are). */
  __u8 data[SW_KERNEL_STACK_BYTES + SW_USER_STACK_BYTES];
};

#endif /* STACKWATCH_BPF_STACKWATCH_H */
