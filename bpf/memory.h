/* Structs and constants of the memory probes (memory.bpf.c), shared with
 * user space (profiler/memory_sampler.cpp), which never re-declares them and
 * static_asserts their sizes.
 *
 * One uprobe program serves every allocator entry point and one uretprobe
 * program every return: the attach cookie says which function it is.
 */
#ifndef STACKWATCH_BPF_MEMORY_H
#define STACKWATCH_BPF_MEMORY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The probed functions (attach cookies). reallocarray is not among them:
 * glibc and musl implement it as a call to realloc, where it is seen. */
enum sw_mem_op {
  SW_MEM_NONE = 0,
  SW_MEM_MALLOC = 1,
  SW_MEM_CALLOC = 2,
  SW_MEM_REALLOC = 3,
  SW_MEM_POSIX_MEMALIGN = 4,
  SW_MEM_MEMALIGN = 5, /* aligned_alloc too: the same code in glibc */
  SW_MEM_VALLOC = 6,
  SW_MEM_PVALLOC = 7,
  SW_MEM_MMAP = 8,
  SW_MEM_MUNMAP = 9,
  SW_MEM_FREE = 10,
  SW_MEM_OP_MAX = 11,
};

/* What a per-interval memory event counts; user space turns it into the
 * StackSample detail string. Carried in sw_stack_key.state. */
enum sw_mem_event {
  SW_MEM_EV_PAGE_FAULT = 1,    /* "page-fault" */
  SW_MEM_EV_DOUBLE_FREE = 2,   /* "double-free": freed again, not reallocated since */
  SW_MEM_EV_FREE_UNKNOWN = 3,  /* "free-unknown": never allocated (traced from the start only) */
  SW_MEM_EV_REALLOC_FREED = 4, /* "realloc-freed": realloc of a freed pointer */
  SW_MEM_EV_ZERO_SIZE = 5,     /* "zero-size": malloc(0), calloc(0, n), ... */
};

/* Why an allocator event or a page fault was not recorded (a per-CPU array
 * indexed by these, next to the sw_drop_reason one). */
enum sw_mem_lost_reason {
  SW_MEM_LOST_RATE_LIMITED = 0,  /* over max_events_per_second: allocation not tracked */
  SW_MEM_LOST_ALLOCS_FULL = 1,   /* the live-allocation hash is full */
  SW_MEM_LOST_STACKS_FULL = 2,   /* the per-stack outstanding hash is full */
  SW_MEM_LOST_THREADS_FULL = 3,  /* the in-flight call map could not take the thread */
  SW_MEM_LOST_READ_FAILED = 4,   /* posix_memalign's result could not be read */
  SW_MEM_LOST_FAULTS_RATE = 5,   /* page faults over max_events_per_second */
  SW_MEM_LOST_MAX = 6,
};

/* A live allocation, by process and address. */
struct sw_mem_alloc_key {
  __u32 tgid;
  __u32 pad;
  __u64 addr;
};

struct sw_mem_alloc {
  __u64 size;
  __s32 user_stack_id; /* the allocating stack (< 0: -errno) */
  __u32 counted;       /* added to its stack's outstanding entry */
};

/* Outstanding memory per allocating stack. */
struct sw_mem_stack_key {
  __u32 tgid;
  __s32 user_stack_id;
};

struct sw_mem_outstanding {
  __s64 bytes;  /* signed: frees race with the drain's removal of empty entries */
  __s64 count;
  __u32 tid;    /* the first thread that allocated here */
  __u32 generation; /* the process's exec count then (see mem_generation) */
  char comm[16];
  char process_comm[16];
};

/* One allocator call of a thread, between its entry and its return. */
struct sw_mem_pending {
  __u32 op;             /* enum sw_mem_op; SW_MEM_NONE once returned */
  __u32 has_old;
  __u64 sp;             /* at entry: a call with a lower sp is nested in this one */
  __u64 size;
  __u64 ptr;            /* realloc: the old block; posix_memalign: where the result goes */
  __u64 ret;            /* free: its return address, at sp while it runs */
  struct sw_mem_alloc old; /* realloc: the old block's record, restored if it fails */
};

/* Frames kept per memory stack (allocation stacks live as long as their
 * blocks, so their map is never recycled: half the kernel's depth halves
 * its memory; deeper stacks lose their outermost frames). */
#define SW_MEM_STACK_DEPTH 64

/* A bad operation's user stack, innermost first, zero-padded. */
struct sw_mem_frames {
  __u64 ips[SW_MEM_STACK_DEPTH];
};

/* Per CPU: the current one-second window of the rate limit. */
struct sw_mem_rate {
  __u64 window_start_ns;
  __u64 events;
};

#endif /* STACKWATCH_BPF_MEMORY_H */
