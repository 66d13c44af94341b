/* Structs and constants of the uprobe latency probes (latency.bpf.c),
 * shared with user space (profiler/latency_probes.cpp), which never
 * re-declares them and static_asserts their sizes.
 *
 * One probe = one function (uprobe at its entry + uretprobe); the BPF
 * programs read the probe id from the attach cookie, so one pair of
 * programs serves every probed function.
 */
#ifndef STACKWATCH_BPF_LATENCY_H
#define STACKWATCH_BPF_LATENCY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Probed functions at once: the top suspects (5 by default) or a hand-given
 * list; 64 is far more than a person reads in one report. */
#define SW_LAT_MAX_PROBES 64

/* Latency histogram: log-linear, 8 linear sub-buckets per power of two
 * (p50/p99 within 12.5%), exact below 16 ns, up to 2^41 ns (~37 min). */
#define SW_LAT_SUB_BITS 3
#define SW_LAT_SUBS (1 << SW_LAT_SUB_BITS)
#define SW_LAT_MAX_LOG2 40
#define SW_LAT_BUCKETS ((SW_LAT_MAX_LOG2 - 1) * SW_LAT_SUBS)

/* Nested probed calls tracked per thread (recursion, or a probed function
 * calling another); deeper calls are counted as dropped, never mismatched. */
#define SW_LAT_MAX_DEPTH 16

enum sw_lat_drop_reason {
  SW_LAT_DROP_THREADS_FULL = 0, /* the per-thread map is full */
  SW_LAT_DROP_TOO_DEEP = 1,     /* nesting beyond SW_LAT_MAX_DEPTH */
  SW_LAT_DROP_UNBALANCED = 2,   /* a return without its entry (longjmp, exceptions) */
  SW_LAT_DROP_BLOCKED_FULL = 3, /* the blocked-stacks map is full */
  SW_LAT_DROP_STACK = 4,        /* bpf_get_stackid failed at switch-out */
  SW_LAT_DROP_SYSCALLS_FULL = 5, /* the by-system-call map is full */
  SW_LAT_DROP_MAX = 6,
};

/* Per probe: what its calls measured (an array indexed by probe id). */
struct sw_lat_stats {
  __u64 count;       /* completed calls */
  __u64 sum_ns;      /* summed latency */
  __u64 max_ns;
  __u64 oncpu_ns;    /* latency minus the time seen off the CPU (exact, from sched_switch) */
  __u64 runtime_ns;  /* task->se.sum_exec_runtime deltas, clamped per call: the
                      * task's own accounting, which lags by up to a tick while the
                      * task runs, so it is a cross-check for long calls only */
  __u64 sleep_ns;    /* off CPU, sleeping (interruptible / uninterruptible) */
  __u64 runqueue_ns; /* off CPU, runnable (preempted) */
  __u64 nvcsw;       /* voluntary context switches during calls */
  __u64 nivcsw;      /* involuntary context switches during calls */
  __u64 syscall_ns;  /* of oncpu_ns: on the CPU inside system calls (exact, from
                      * sys_enter/sys_exit and sched_switch) */
  __u64 hist[SW_LAT_BUCKETS];
};

/* One active probed call of a thread. */
struct sw_lat_frame {
  __u32 probe_id;
  __u32 pad;
  __u64 start_ns;
  __u64 start_runtime;
  __u64 start_nvcsw;
  __u64 start_nivcsw;
  __u64 sleep_ns;
  __u64 runqueue_ns;
  __u64 start_syscall_ns; /* the thread's syscall_ns at the entry */
};

/* Per thread: its active probed calls and, while it is off the CPU, when
 * and where it left. */
struct sw_lat_thread {
  __u32 depth;
  __u32 off_state; /* enum sw_task_state */
  __u64 off_ts;    /* 0 while on the CPU */
  __s32 off_stack_id;
  __u32 sys_nr;      /* the system call in progress (with in_syscall) */
  __u32 in_syscall;  /* between sys_enter and sys_exit, entered with probed calls active */
  __u32 pad;
  __u64 syscall_start; /* when its current stretch on the CPU in the system call began; 0 while off */
  __u64 syscall_ns;    /* on the CPU inside system calls, summed (monotonic) */
  struct sw_lat_frame frames[SW_LAT_MAX_DEPTH];
};

/* Blocked time of probed calls, by kernel stack and state. */
struct sw_lat_block_key {
  __u32 probe_id;
  __s32 kernel_stack_id;
  __u32 state; /* enum sw_task_state */
  __u32 pad;
};

struct sw_lat_block_value {
  __u64 ns;
  __u64 events;
};

/* On-CPU time of probed calls inside system calls, by system call. */
struct sw_lat_syscall_key {
  __u32 probe_id;
  __u32 nr; /* the architecture's system call number */
};

struct sw_lat_syscall_value {
  __u64 ns;
  __u64 calls; /* completed system calls */
};

/* Histogram bucket of a latency: exact below 16 ns, then 8 per power of two. */
static inline __u32 sw_lat_bucket_of(__u64 ns, __u32 log2_ns) {
  if (ns < 2 * SW_LAT_SUBS) return (__u32)ns;
  if (log2_ns > SW_LAT_MAX_LOG2) return SW_LAT_BUCKETS - 1;
  return (log2_ns - 2) * SW_LAT_SUBS + (__u32)((ns >> (log2_ns - SW_LAT_SUB_BITS)) & (SW_LAT_SUBS - 1));
}

/* Smallest latency of a bucket (user space: percentiles). */
static inline __u64 sw_lat_bucket_floor(__u32 bucket) {
  if (bucket < 2 * SW_LAT_SUBS) return bucket;
  __u32 log2_ns = bucket / SW_LAT_SUBS + 2;
  return (__u64)(SW_LAT_SUBS + bucket % SW_LAT_SUBS) << (log2_ns - SW_LAT_SUB_BITS);
}

#endif /* STACKWATCH_BPF_LATENCY_H */
