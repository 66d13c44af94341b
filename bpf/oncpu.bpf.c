// SPDX-License-Identifier: GPL-2.0
/* On-CPU sampling: a perf-event program on every online CPU counts
 * (tgid, tid, kernel stack, user stack, comm) in the kernel.
 *
 * Counts and stacks are double-buffered (counts0/stacks0, counts1/stacks1):
 * user space flips `active_buffer`, waits for in-flight programs, then drains
 * and clears the inactive pair, so no sample is lost to a drain race and a
 * stack id always refers to the stack map it was taken from.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct counts_map {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct sw_stack_key);
  __type(value, struct sw_stack_value);
};
struct stacks_map {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
};

struct counts_map counts0 SEC(".maps");
struct counts_map counts1 SEC(".maps");
struct stacks_map stacks0 SEC(".maps");
struct stacks_map stacks1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} oncpu_drops SEC(".maps");

/* Which buffer pair BPF writes to; flipped by user space through the mmapped .bss. */
volatile __u32 active_buffer = 0;
/* Whether to collect kernel / user stacks (set before load). */
const volatile bool collect_kernel = true;
const volatile bool collect_user = true;

static __always_inline void record(struct bpf_perf_event_data *ctx, void *counts, void *stacks,
                                   __u32 tgid, __u32 tid) {
  struct sw_stack_key key = {};
  key.tgid = tgid;
  key.tid = tid;
  key.kernel_stack_id = -EFAULT;
  key.user_stack_id = -EFAULT;
  if (collect_kernel)
    key.kernel_stack_id = classify_stackid(&oncpu_drops, bpf_get_stackid(ctx, stacks, 0),
                                           SW_DROP_KERNEL_STACK);
  if (collect_user) {
    struct task_struct *task = bpf_get_current_task_btf();
    long id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
    /* A kernel thread has no user stack: -EFAULT there is expected. */
    if (id == -EFAULT && BPF_CORE_READ(task, mm) != NULL) {
      count_drop(&oncpu_drops, SW_DROP_USER_STACK);
      key.user_stack_id = -EFAULT;
    } else {
      key.user_stack_id = classify_stackid(&oncpu_drops, id, SW_DROP_USER_STACK);
    }
  }
  bpf_get_current_comm(&key.comm, sizeof(key.comm));

  struct sw_stack_value *v = bpf_map_lookup_elem(counts, &key);
  if (v) {
    __sync_fetch_and_add(&v->count, 1);
    return;
  }
  struct sw_stack_value init = {};
  init.count = 1;
  BPF_CORE_READ_STR_INTO(&init.process_comm, bpf_get_current_task_btf(), group_leader, comm);
  if (bpf_map_update_elem(counts, &key, &init, BPF_NOEXIST) != 0) {
    v = bpf_map_lookup_elem(counts, &key); /* another CPU inserted it first */
    if (v)
      __sync_fetch_and_add(&v->count, 1);
    else
      count_drop(&oncpu_drops, SW_DROP_COUNTS_FULL);
  }
}

/* DWARF mode: sends the kernel stack, the user registers and the top of the
 * user stack to user space, which unwinds and aggregates. Returns false if
 * the task has no user space (a kernel thread: aggregate in the kernel). */
static __always_inline bool send_stack_copy(struct bpf_perf_event_data *ctx, __u32 tgid, __u32 tid) {
  struct task_struct *task = bpf_get_current_task_btf();
  if (BPF_CORE_READ(task, mm) == NULL) return false;
  struct sw_stack_sample *e = start_stack_sample(task, tgid, tid, SW_KIND_ON_CPU);
  if (!e) return false;
  long n = bpf_get_stack(ctx, e->data, SW_MAX_STACK_DEPTH * sizeof(__u64), 0);
  e->kernel_depth = n > 0 ? (__u32)(n / sizeof(__u64)) : 0;
  copy_user_stack(e);
  /* No wake-up per sample: the reader is woken once the ring is a quarter
   * full (send_stack_sample), else reads it every 100 ms. */
  if (send_stack_sample(e) != 0) count_drop(&oncpu_drops, SW_DROP_EVENTS_FULL);
  return true;
}

SEC("perf_event")
int sample_on_cpu(struct bpf_perf_event_data *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  __u32 tid = (__u32)id;
  if (tid == 0) return 0; /* the idle task */
  if (!is_target(tgid)) return 0;
  note_seen(&oncpu_drops, tgid, tid);
  if (copy_user_stacks && send_stack_copy(ctx, tgid, tid)) return 0;
  if (active_buffer == 0)
    record(ctx, &counts0, &stacks0, tgid, tid);
  else
    record(ctx, &counts1, &stacks1, tgid, tid);
  return 0;
}
