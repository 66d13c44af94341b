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
  SW_DROP_MAX = 6,
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

#endif /* STACKWATCH_BPF_STACKWATCH_H */
