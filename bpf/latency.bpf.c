// SPDX-License-Identifier: GPL-2.0
/* Uprobe latency probes: per call of a probed function, its latency, the
 * time on CPU during it (the task's run-time accounting), the time blocked
 * or waiting for a CPU, the context switches, and the kernel stacks where it
 * blocked.
 *
 * lat_entry (uprobe) pushes a frame on a small per-thread stack; lat_return
 * (uretprobe) pops it and adds the call to its probe's stats. User space
 * attaches the uretprobe before the uprobe, so no entry goes unpaired. The probe id
 * is the attach cookie, so one pair of programs serves every function.
 * lat_switch (tp_btf/sched_switch) notes when a thread with active probed
 * calls leaves the CPU, in which state and under which kernel stack, and
 * when it comes back adds the time away to every active call of it and to
 * the blocked-stacks map. lat_sys_enter/lat_sys_exit (tp_btf, the raw
 * system call tracepoints) time the stretches on the CPU inside system
 * calls of threads with active probed calls, so user space can tell a
 * function's own CPU work from the kernel's work in its write()s and
 * fsync()s. Threads without active probed calls cost one hash lookup per
 * switch and per system call.
 */
#include "common.bpf.h"
#include "latency.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SW_LAT_MAX_PROBES);
  __type(key, __u32);
  __type(value, struct sw_lat_stats);
} lat_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32); /* tid */
  __type(value, struct sw_lat_thread);
} lat_threads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct sw_lat_block_key);
  __type(value, struct sw_lat_block_value);
} lat_blocked SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 4096);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
} lat_stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_LAT_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} lat_drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct sw_lat_syscall_key);
  __type(value, struct sw_lat_syscall_value);
} lat_syscalls SEC(".maps");

/* A zeroed thread record to insert from (too large for the BPF stack). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sw_lat_thread);
} lat_zero SEC(".maps");

#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_NOLOAD 0x400

static __always_inline __u32 lat_state(unsigned int state, bool preempt) {
  if (preempt || state == 0) return SW_STATE_RUNNING;
  if (state & TASK_INTERRUPTIBLE) return SW_STATE_INTERRUPTIBLE;
  if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD)) return SW_STATE_UNINTERRUPTIBLE;
  return SW_STATE_OTHER;
}

static __always_inline __u32 log2_u32(__u32 v) {
  __u32 r, shift;
  r = (v > 0xFFFF) << 4;
  v >>= r;
  shift = (v > 0xFF) << 3;
  v >>= shift;
  r |= shift;
  shift = (v > 0xF) << 2;
  v >>= shift;
  r |= shift;
  shift = (v > 0x3) << 1;
  v >>= shift;
  r |= shift;
  r |= (v >> 1);
  return r;
}

static __always_inline __u32 log2_u64(__u64 v) {
  __u32 hi = v >> 32;
  return hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);
}

/* Ends the thread's current stretch on the CPU inside a system call: adds
 * it to the thread's sum and, once per probed function active on the
 * thread, to the by-system-call map (with a completed call at the exit). */
static __always_inline void end_syscall_stretch(struct sw_lat_thread *t, __u64 now, bool exiting) {
  if (t->syscall_start == 0 && !exiting) return;
  __u64 delta = t->syscall_start ? now - t->syscall_start : 0;
  t->syscall_start = 0;
  t->syscall_ns += delta;
  __u32 depth = t->depth;
  __u32 last_probe = SW_LAT_MAX_PROBES;
  for (int i = 0; i < SW_LAT_MAX_DEPTH; i++) {
    if (i >= (int)depth) break;
    __u32 probe = t->frames[i & (SW_LAT_MAX_DEPTH - 1)].probe_id;
    if (probe == last_probe) continue; /* recursion: once per function */
    last_probe = probe;
    struct sw_lat_syscall_key key = {.probe_id = probe, .nr = t->sys_nr};
    struct sw_lat_syscall_value init = {};
    struct sw_lat_syscall_value *v = lookup_or_insert(&lat_syscalls, &key, &init, &lat_drops, SW_LAT_DROP_SYSCALLS_FULL);
    if (!v) continue;
    __sync_fetch_and_add(&v->ns, delta);
    if (exiting) __sync_fetch_and_add(&v->calls, 1);
  }
}

SEC("uprobe")
int lat_entry(struct pt_regs *ctx) {
  __u32 id = (__u32)bpf_get_attach_cookie(ctx);
  if (id >= SW_LAT_MAX_PROBES) return 0;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct sw_lat_thread *t = bpf_map_lookup_elem(&lat_threads, &tid);
  if (!t) {
    __u32 zero = 0;
    struct sw_lat_thread *z = bpf_map_lookup_elem(&lat_zero, &zero);
    if (!z) return 0;
    t = lookup_or_insert(&lat_threads, &tid, z, &lat_drops, SW_LAT_DROP_THREADS_FULL);
    if (!t) return 0;
  }
  __u32 d = t->depth;
  /* Beyond the bound the depth still counts, so returns stay paired. */
  t->depth = d + 1;
  if (d >= SW_LAT_MAX_DEPTH) {
    count_drop(&lat_drops, SW_LAT_DROP_TOO_DEEP);
    return 0;
  }
  struct sw_lat_frame *f = &t->frames[d & (SW_LAT_MAX_DEPTH - 1)];
  struct task_struct *task = bpf_get_current_task_btf();
  f->probe_id = id;
  f->start_runtime = BPF_CORE_READ(task, se.sum_exec_runtime);
  f->start_nvcsw = BPF_CORE_READ(task, nvcsw);
  f->start_nivcsw = BPF_CORE_READ(task, nivcsw);
  f->sleep_ns = 0;
  f->runqueue_ns = 0;
  f->start_syscall_ns = t->syscall_ns;
  f->start_ns = bpf_ktime_get_ns(); /* last: our own reads are not the call's time */
  return 0;
}

SEC("uretprobe")
int lat_return(struct pt_regs *ctx) {
  __u64 now = bpf_ktime_get_ns();
  __u32 id = (__u32)bpf_get_attach_cookie(ctx);
  if (id >= SW_LAT_MAX_PROBES) return 0;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct sw_lat_thread *t = bpf_map_lookup_elem(&lat_threads, &tid);
  if (!t || t->depth == 0) return 0; /* its entry ran before the probes were attached */
  __u32 d = t->depth - 1;
  if (d >= SW_LAT_MAX_DEPTH) {
    t->depth = d;
    return 0; /* its entry was too deep and already counted */
  }
  /* Find this probe's frame: frames above it whose return never came
   * (longjmp, an exception unwinding through them) are dropped. */
  int found = -1;
  for (int i = 0; i < SW_LAT_MAX_DEPTH; i++) {
    if (i > (int)d) break;
    __u32 at = (d - i) & (SW_LAT_MAX_DEPTH - 1);
    if (t->frames[at].probe_id == id) {
      found = (int)at;
      break;
    }
  }
  if (found < 0) return 0; /* an entry we never saw (attached mid-call): nothing to pop */
  if ((__u32)found != d) count_drop(&lat_drops, SW_LAT_DROP_UNBALANCED);
  t->depth = (__u32)found;
  struct sw_lat_frame *f = &t->frames[found & (SW_LAT_MAX_DEPTH - 1)];
  struct sw_lat_stats *s = bpf_map_lookup_elem(&lat_stats, &id);
  if (!s) return 0;

  struct task_struct *task = bpf_get_current_task_btf();
  __u64 lat = now - f->start_ns;
  __u64 off = f->sleep_ns + f->runqueue_ns;
  __u64 on = BPF_CORE_READ(task, se.sum_exec_runtime) - f->start_runtime;
  /* The run time of a running task is brought up to date only at ticks and
   * switches: clamp it to the time the call was not seen off the CPU. */
  if ((__s64)on < 0) on = 0;
  if (off > lat) off = lat;
  if (on > lat - off) on = lat - off;

  __sync_fetch_and_add(&s->count, 1);
  __sync_fetch_and_add(&s->sum_ns, lat);
  __sync_fetch_and_add(&s->oncpu_ns, lat - off);
  __sync_fetch_and_add(&s->runtime_ns, on);
  __u64 sys = t->syscall_ns - f->start_syscall_ns;
  if (sys > lat - off) sys = lat - off;
  __sync_fetch_and_add(&s->syscall_ns, sys);
  __sync_fetch_and_add(&s->sleep_ns, f->sleep_ns);
  __sync_fetch_and_add(&s->runqueue_ns, f->runqueue_ns);
  __sync_fetch_and_add(&s->nvcsw, BPF_CORE_READ(task, nvcsw) - f->start_nvcsw);
  __sync_fetch_and_add(&s->nivcsw, BPF_CORE_READ(task, nivcsw) - f->start_nivcsw);
  if (lat > s->max_ns) s->max_ns = lat; /* racy between CPUs; a lost max is another call's */
  /* 64-bit and behind a barrier: the verifier must see the bound check on
   * the very register used as the index. */
  __u64 b = sw_lat_bucket_of(lat, log2_u64(lat));
  asm volatile("" : "+r"(b));
  if (b < SW_LAT_BUCKETS) __sync_fetch_and_add(&s->hist[b], 1);
  return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(lat_switch, bool preempt, struct task_struct *prev, struct task_struct *next) {
  __u64 now = bpf_ktime_get_ns();
  __u32 prev_tid = BPF_CORE_READ(prev, pid);
  struct sw_lat_thread *t = bpf_map_lookup_elem(&lat_threads, &prev_tid);
  if (t && t->depth > 0) {
    t->off_ts = now;
    t->off_state = lat_state(BPF_CORE_READ(prev, __state), preempt);
    long id = bpf_get_stackid(ctx, &lat_stacks, 0);
    if (id < 0) count_drop(&lat_drops, SW_LAT_DROP_STACK);
    t->off_stack_id = (__s32)id;
    if (t->in_syscall) end_syscall_stretch(t, now, false);
  }

  __u32 next_tid = BPF_CORE_READ(next, pid);
  t = bpf_map_lookup_elem(&lat_threads, &next_tid);
  if (!t || t->off_ts == 0) return 0;
  __u64 delta = now - t->off_ts;
  t->off_ts = 0;
  if (t->in_syscall) t->syscall_start = now;
  __u32 depth = t->depth;
  bool running = t->off_state == SW_STATE_RUNNING;
  __u32 last_probe = SW_LAT_MAX_PROBES;
  for (int i = 0; i < SW_LAT_MAX_DEPTH; i++) {
    if (i >= (int)depth) break;
    struct sw_lat_frame *f = &t->frames[i & (SW_LAT_MAX_DEPTH - 1)];
    if (running)
      f->runqueue_ns += delta;
    else
      f->sleep_ns += delta;
    if (f->probe_id == last_probe) continue; /* recursion: once per function */
    last_probe = f->probe_id;
    struct sw_lat_block_key key = {.probe_id = f->probe_id, .kernel_stack_id = t->off_stack_id, .state = t->off_state};
    struct sw_lat_block_value init = {};
    struct sw_lat_block_value *v = lookup_or_insert(&lat_blocked, &key, &init, &lat_drops, SW_LAT_DROP_BLOCKED_FULL);
    if (!v) continue;
    __sync_fetch_and_add(&v->ns, delta);
    __sync_fetch_and_add(&v->events, 1);
  }
  return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(lat_sys_enter, struct pt_regs *regs, long nr) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct sw_lat_thread *t = bpf_map_lookup_elem(&lat_threads, &tid);
  if (!t || t->depth == 0) return 0;
  t->in_syscall = 1;
  t->sys_nr = (__u32)nr;
  t->syscall_start = bpf_ktime_get_ns();
  return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(lat_sys_exit, struct pt_regs *regs, long ret) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct sw_lat_thread *t = bpf_map_lookup_elem(&lat_threads, &tid);
  if (!t || !t->in_syscall) return 0;
  end_syscall_stretch(t, bpf_ktime_get_ns(), true);
  t->in_syscall = 0;
  return 0;
}
