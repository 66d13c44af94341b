// SPDX-License-Identifier: GPL-2.0
/* Off-CPU time: how long threads stay off the CPU, and where they were.
 *
 * One tp_btf/sched_switch program (no tracefs needed). For the thread
 * leaving the CPU (`prev`, still `current` here) it takes the kernel and
 * user stack ids and notes the time and the state it left in; for the thread
 * coming back (`next`) it adds the time it was away to its key, if that was
 * at least min_block_ns.
 *
 * Why stacks at switch-out: this kernel refuses fentry/fexit programs
 * (EPERM for every target), so there is no hook in the woken thread's own
 * context on its way back out of schedule(); switch-out is the last moment
 * its stacks can be read.
 *
 * Counts are double-buffered like the on-CPU ones. Stacks are too, with a
 * twist: a thread may sleep across many intervals (a 20 s fdatasync, a
 * daemon idle for hours), so a stack id taken at switch-out must still mean
 * its stack when the thread wakes up, after its map was recycled. Hence
 * stack ids are tagged: user space sets stack_epoch each interval (bit 0
 * picks the map, the whole value is the tag) and every id stored is
 * (tag << stack_id_bits) | id. Before it recycles a map, user space copies
 * the stacks still in it and answers later lookups of that tag from its
 * copy (see offcpu_stack_ids.h), so recycling loses nothing and the kernel
 * maps stay bounded by what one interval takes (stack map full is counted).
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct counts_map {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct sw_stack_key);
  __type(value, struct sw_stack_value);
};

struct counts_map off_counts0 SEC(".maps");
struct counts_map off_counts1 SEC(".maps");

struct off_stack_map {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
};

struct off_stack_map off_stacks0 SEC(".maps");
struct off_stack_map off_stacks1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} offcpu_drops SEC(".maps");

/* A thread that is off the CPU right now. */
struct off_start {
  __u64 off_ts; /* when it left the CPU */
  __s32 kernel_stack_id;
  __s32 user_stack_id;
  __u32 state; /* enum sw_task_state */
  __u32 tgid;
  char comm[SW_COMM_LEN];
  char process_comm[SW_COMM_LEN];
  __u32 has_user; /* a user task (has an mm): its stack can be copied */
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32); /* tid */
  __type(value, struct off_start);
} off_start SEC(".maps");

struct off_pending {
  struct off_start start; /* who (tgid, comm); the blocks say where and how long */
  __u32 nblocks;
  __u32 pad;
  struct sw_off_block blocks[SW_MAX_PENDING_BLOCKS];
};

/* DWARF mode: blocks that were long enough, waiting for their thread's next
 * system call exit, where (in the thread's own context, with its user stack
 * exactly as it was while blocked) the user stack is copied for unwinding.
 * Only long blocks get here, so the copy is never made on every switch. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32); /* tid */
  __type(value, struct off_pending);
} off_pending SEC(".maps");

volatile __u32 active_buffer = 0;
const volatile __u64 min_block_ns = 1000000;
/* Stack ids of one map fit in stack_id_bits; the tag goes above them. */
const volatile __u32 stack_id_bits = 16;
volatile __u32 stack_epoch = 0;

/* A tagged stack id of the current task's kernel or user stack, or -errno. */
static __always_inline long take_stackid(void *ctx, __u32 epoch, __u64 flags) {
  long id = (epoch & 1) ? bpf_get_stackid(ctx, &off_stacks1, flags) : bpf_get_stackid(ctx, &off_stacks0, flags);
  if (id < 0) return id;
  return (long)(((__u64)epoch << stack_id_bits) | (__u64)id);
}

/* Kernel task state bits (include/linux/sched.h). */
#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_NOLOAD 0x400
#define TASK_DEAD 0x80

static __always_inline __u32 classify_state(unsigned int state) {
  if (state == 0) return SW_STATE_RUNNING;
  if (state & TASK_INTERRUPTIBLE) return SW_STATE_INTERRUPTIBLE;
  /* TASK_IDLE = uninterruptible | noload: idle kernel threads, not I/O. */
  if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD)) return SW_STATE_UNINTERRUPTIBLE;
  return SW_STATE_OTHER;
}

static __always_inline void add_time_active(__u32 tid, const struct off_start *s, __u64 delta);

static __always_inline void add_time(void *counts, __u32 tid, const struct off_start *s, __u64 delta) {
  struct sw_stack_key key = {};
  key.tgid = s->tgid;
  key.tid = tid;
  key.kernel_stack_id = s->kernel_stack_id;
  key.user_stack_id = s->user_stack_id;
  key.state = s->state;
  __builtin_memcpy(key.comm, s->comm, sizeof(key.comm));
  struct sw_stack_value *v = bpf_map_lookup_elem(counts, &key);
  if (v) {
    __sync_fetch_and_add(&v->count, 1);
    __sync_fetch_and_add(&v->total_ns, delta);
    return;
  }
  struct sw_stack_value init = {};
  init.count = 1;
  init.total_ns = delta;
  __builtin_memcpy(init.process_comm, s->process_comm, sizeof(init.process_comm));
  if (bpf_map_update_elem(counts, &key, &init, BPF_NOEXIST) != 0) {
    v = bpf_map_lookup_elem(counts, &key); /* another CPU inserted it first */
    if (v) {
      __sync_fetch_and_add(&v->count, 1);
      __sync_fetch_and_add(&v->total_ns, delta);
    } else {
      count_drop(&offcpu_drops, SW_DROP_COUNTS_FULL);
    }
  }
}

static __always_inline void add_time_active(__u32 tid, const struct off_start *s, __u64 delta) {
  if (active_buffer == 0)
    add_time(&off_counts0, tid, s, delta);
  else
    add_time(&off_counts1, tid, s, delta);
}

/* Counts one block with its frame-pointer user stack. */
static __always_inline void add_block_fp(__u32 tid, const struct off_start *who, const struct sw_off_block *b) {
  struct off_start s = *who;
  s.kernel_stack_id = b->kernel_stack_id;
  s.user_stack_id = b->user_stack_id;
  s.state = b->state;
  add_time_active(tid, &s, b->off_ns);
}

/* Pending blocks of a thread that exits before its next system call exit:
 * counted with their frame-pointer user stacks. */
static __always_inline void flush_pending(__u32 tid) {
  struct off_pending *p = bpf_map_lookup_elem(&off_pending, &tid);
  if (!p) return;
  for (int i = 0; i < SW_MAX_PENDING_BLOCKS; i++)
    if (i < p->nblocks) add_block_fp(tid, &p->start, &p->blocks[i]);
  bpf_map_delete_elem(&off_pending, &tid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(off_cpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next) {
  __u64 now = bpf_ktime_get_ns();

  /* The thread leaving the CPU: remember when, how, and where. */
  __u32 prev_tid = BPF_CORE_READ(prev, pid);
  __u32 prev_tgid = BPF_CORE_READ(prev, tgid);
  unsigned int prev_state = BPF_CORE_READ(prev, __state);
  /* A dead thread's last switch comes after its exit handler: it will never
   * come back, so it gets no entry (none is left behind). */
  if (prev_tid != 0 && !(prev_state & TASK_DEAD) && is_target(prev_tgid)) {
    struct off_start s = {};
    s.off_ts = now;
    s.tgid = prev_tgid;
    s.state = classify_state(prev_state);
    __u32 epoch = stack_epoch;
    s.kernel_stack_id = classify_stackid(&offcpu_drops, take_stackid(ctx, epoch, 0), SW_DROP_KERNEL_STACK);
    long uid = take_stackid(ctx, epoch, BPF_F_USER_STACK);
    if (uid == -EFAULT && BPF_CORE_READ(prev, mm) != NULL)
      count_drop(&offcpu_drops, SW_DROP_USER_STACK);
    s.user_stack_id = uid == -EFAULT ? (__s32)uid : classify_stackid(&offcpu_drops, uid, SW_DROP_USER_STACK);
    BPF_CORE_READ_STR_INTO(&s.comm, prev, comm);
    BPF_CORE_READ_STR_INTO(&s.process_comm, prev, group_leader, comm);
    s.has_user = BPF_CORE_READ(prev, mm) != NULL;
    bpf_map_update_elem(&off_start, &prev_tid, &s, BPF_ANY);
  }

  /* The thread coming back: add the time it was away. */
  __u32 next_tid = BPF_CORE_READ(next, pid);
  if (next_tid == 0) return 0;
  struct off_start *s = bpf_map_lookup_elem(&off_start, &next_tid);
  if (!s) return 0;
  __u64 delta = now - s->off_ts;
  if (delta >= min_block_ns) {
    /* Preempted threads go back to user code without a syscall exit. */
    if (copy_user_stacks && s->has_user && s->state != SW_STATE_RUNNING) {
      struct sw_off_block b = {};
      b.kernel_stack_id = s->kernel_stack_id;
      b.user_stack_id = s->user_stack_id;
      b.state = s->state;
      b.off_ns = delta;
      struct off_pending *p = bpf_map_lookup_elem(&off_pending, &next_tid);
      if (!p) {
        struct off_pending fresh = {};
        fresh.start = *s;
        fresh.nblocks = 1;
        fresh.blocks[0] = b;
        bpf_map_update_elem(&off_pending, &next_tid, &fresh, BPF_ANY);
      } else if (p->nblocks < SW_MAX_PENDING_BLOCKS) {
        p->blocks[p->nblocks & (SW_MAX_PENDING_BLOCKS - 1)] = b;
        p->nblocks++;
      } else {
        add_block_fp(next_tid, &p->start, &b); /* more blocks than a copy carries */
      }
    } else {
      add_time_active(next_tid, s, delta);
    }
  }
  bpf_map_delete_elem(&off_start, &next_tid);
  return 0;
}

/* DWARF mode: the blocked thread is back in its own context, leaving the
 * system call it blocked in; its user registers and stack are those it
 * blocked with. Loaded only in DWARF mode (it runs on every syscall exit). */
SEC("tp_btf/sys_exit")
int BPF_PROG(off_cpu_sys_exit, struct pt_regs *regs, long ret) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct off_pending *p = bpf_map_lookup_elem(&off_pending, &tid);
  if (!p) return 0;
  struct sw_stack_sample *e = start_stack_sample(bpf_get_current_task_btf(), p->start.tgid, tid, SW_KIND_OFF_CPU);
  if (!e) {
    flush_pending(tid);
    return 0;
  }
  e->nblocks = p->nblocks;
  for (int i = 0; i < SW_MAX_PENDING_BLOCKS; i++) e->blocks[i] = p->blocks[i];
  /* Names: start_stack_sample read them now, in the system call the thread
   * blocked in, where they are those it blocked with. */
  copy_user_stack(e);
  if (send_stack_sample(e) != 0) {
    count_drop(&offcpu_drops, SW_DROP_COPY_FALLBACK);
    flush_pending(tid); /* keep the time, with the frame-pointer stacks */
    return 0;
  }
  bpf_map_delete_elem(&off_pending, &tid);
  return 0;
}

/* No entry outlives its thread. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(off_cpu_exit, struct task_struct *p) {
  __u32 tid = BPF_CORE_READ(p, pid);
  bpf_map_delete_elem(&off_start, &tid);
  if (copy_user_stacks) flush_pending(tid);
  return 0;
}
