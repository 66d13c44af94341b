/* Maps and helpers shared by every stackwatch BPF program.
 *
 * Each skeleton declares these maps; user space creates them once (in the
 * process-tracking skeleton) and hands the same fds to the others with
 * bpf_map__reuse_fd before load, so the pid filter and the "seen" set are
 * one object shared by on-CPU, off-CPU and process tracking.
 */
#ifndef STACKWATCH_BPF_COMMON_H
#define STACKWATCH_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "stackwatch.h"

#define EFAULT 14
#define EEXIST 17
#define ENOMEM 12

/* tgids to record when filtering; sized from flags by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} targets SEC(".maps");

/* tgids already announced to user space (LRU: exits also delete). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} seen SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} proc_events SEC(".maps");

/* Set through the skeleton before load. */
const volatile bool filter_targets = false;
/* stackwatch's own process: never recorded, it would only show itself draining. */
const volatile __u32 self_tgid = 0;

static __always_inline bool is_target(__u32 tgid) {
  if (tgid == self_tgid) return false;
  if (!filter_targets) return true;
  return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline void count_drop(void *drops, __u32 reason) {
  __u64 *v = bpf_map_lookup_elem(drops, &reason);
  if (v) *v += 1; /* per-CPU array: no atomics needed */
}

/* The value at key in a hash map, inserted as *init when absent (another
 * CPU may insert it first: then that one); NULL, counted as drop_reason in
 * drops, when the map is full. */
static __always_inline void *lookup_or_insert(void *map, const void *key, const void *init, void *drops,
                                              __u32 drop_reason) {
  void *v = bpf_map_lookup_elem(map, key);
  if (v) return v;
  if (bpf_map_update_elem(map, key, init, BPF_NOEXIST) != 0 && !bpf_map_lookup_elem(map, key)) {
    count_drop(drops, drop_reason);
    return NULL;
  }
  return bpf_map_lookup_elem(map, key);
}

static __always_inline void emit_proc_event(void *drops, __u32 type, __u32 tgid, __u32 tid,
                                            __u32 parent_tgid, struct task_struct *task) {
  struct sw_proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
  if (!e) {
    count_drop(drops, SW_DROP_EVENTS_FULL);
    return;
  }
  e->type = type;
  e->tgid = tgid;
  e->tid = tid;
  e->parent_tgid = parent_tgid;
  BPF_CORE_READ_STR_INTO(&e->comm, task, group_leader, comm);
  bpf_ringbuf_submit(e, 0);
}

/* Announces a process on its first sample so user space snapshots its
 * mappings while it is alive (a short-lived process still gets names). */
static __always_inline void note_seen(void *drops, __u32 tgid, __u32 tid) {
  __u8 one = 1;
  if (bpf_map_lookup_elem(&seen, &tgid)) return;
  if (bpf_map_update_elem(&seen, &tgid, &one, BPF_NOEXIST) != 0) return; /* raced: someone else announces */
  emit_proc_event(drops, SW_EVENT_FIRST_SEEN, tgid, tid, 0, bpf_get_current_task_btf());
}

/* Records one stack id result, classifying failures. Returns the id or a
 * negative errno. -EFAULT means "no stack of that kind" (a kernel thread has no
 * user stack; a sample in user mode has no kernel stack) and is not a drop. */
static __always_inline __s32 classify_stackid(void *drops, long id, __u32 drop_reason) {
  if (id >= 0) return (__s32)id;
  if (id == -EFAULT) return (__s32)id;
  if (id == -EEXIST || id == -ENOMEM)
    count_drop(drops, SW_DROP_STACK_MAP_FULL);
  else
    count_drop(drops, drop_reason);
  return (__s32)id;
}

/* Samples whose user stack is unwound in user space (see sw_stack_sample). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 * 1024 * 1024);
} stack_samples SEC(".maps");

/* Copy the user stack for DWARF unwinding instead of walking frame pointers. */
const volatile bool copy_user_stacks = false;

/* A DWARF-mode record is built here, then sent with only the stack bytes it
 * holds (send_stack_sample): a fixed-size ring reservation would carry
 * 16 KiB of stack for every sample when most stacks use 1-4 KiB, through
 * the ring, its pages and user space. One program of each object uses it,
 * and a program never nests with itself on a CPU (the kernel's per-program
 * recursion guard), so one slot per CPU is enough. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sw_stack_sample);
} stack_scratch SEC(".maps");

static __always_inline struct sw_stack_sample *stack_scratch_slot(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&stack_scratch, &zero);
}

/* The record slot, its header set for a sample of the current thread (task,
 * which the caller has at hand): no kernel stack, no frame-pointer stack, no
 * blocks, no I/O; the thread's and its process's names. The caller sets
 * what its kind has, copies the user stack and sends it. NULL if the slot
 * cannot be had. */
static __always_inline struct sw_stack_sample *start_stack_sample(struct task_struct *task, __u32 tgid, __u32 tid,
                                                                  __u32 kind) {
  struct sw_stack_sample *e = stack_scratch_slot();
  if (!e) return NULL;
  e->tgid = tgid;
  e->tid = tid;
  e->kind = kind;
  e->state = 0;
  e->off_ns = 0;
  e->kernel_stack_id = -1;
  e->kernel_depth = 0;
  e->user_stack_id = -1;
  e->nblocks = 0;
  e->io_bytes = 0;
  e->io_ns = 0;
  e->io_op = 0;
  e->io_fd_kind = 0;
  e->flags = 0;
  e->stack_len = 0;
  bpf_get_current_comm(&e->comm, sizeof(e->comm));
  BPF_CORE_READ_STR_INTO(&e->process_comm, task, group_leader, comm);
  return e;
}

/* Bytes of kernel addresses at the start of e->data, bounded for the
 * verifier. */
static __always_inline __u64 kernel_stack_bytes(const struct sw_stack_sample *e) {
  __u64 depth = e->kernel_depth;
  if (depth > SW_MAX_STACK_DEPTH) depth = SW_MAX_STACK_DEPTH;
  return (depth * 8) & (SW_KERNEL_STACK_BYTES - 1);
}

/* Sends e with its header, its kernel addresses and e->stack_len bytes of
 * stack; non-zero when the ring is full. The reader is not woken for each
 * record but once the ring is a quarter full (else it reads on its own
 * every 100 ms): at 999 Hz a few dozen wake-ups a second rather than one
 * per ten samples, and a burst of large copies still wakes it early. */
static __always_inline long send_stack_sample(struct sw_stack_sample *e) {
  /* 64 bits and a mask: the verifier must see the size bounded, which a
   * compare on a 32-bit copy does not always show it after clang's
   * zero-extension. */
  __u64 len = e->stack_len;
  if (len > SW_USER_STACK_BYTES) len = SW_USER_STACK_BYTES;
  len &= 2 * SW_USER_STACK_BYTES - 1;
  __u64 size = __builtin_offsetof(struct sw_stack_sample, data) + kernel_stack_bytes(e) + len;
  __u64 flags = BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_query(&stack_samples, BPF_RB_AVAIL_DATA) * 4 >= bpf_ringbuf_query(&stack_samples, BPF_RB_RING_SIZE))
    flags = BPF_RB_FORCE_WAKEUP;
  return bpf_ringbuf_output(&stack_samples, e, size, flags);
}

/* Copies len bytes (at most SW_USER_STACK_BYTES) from sp; false if the
 * range is not wholly mapped. */
static __always_inline bool copy_up_to(struct sw_stack_sample *e, void *sp, __u32 len) {
  if (len > SW_USER_STACK_BYTES) len = SW_USER_STACK_BYTES;
  if (len == 0) return false;
  if (bpf_probe_read_user(e->data + kernel_stack_bytes(e), len, sp) != 0) return false;
  e->stack_len = len;
  return true;
}

/* Per thread: the highest stack address user space's unwinding of its
 * copies has needed, plus a margin (StackCopies::learn_stack_top), or
 * ~0 for "copy to the end of the mapping". Above a thread's outermost
 * frame its mapping holds what no unwinding reads: the thread block and
 * TLS (2-4 KiB), the main thread's arguments and environment; copying up
 * to the top only makes most records a fraction of their size. LRU: a
 * thread that exited ages out; a tid reused by another thread is checked
 * by user space (a copy that ended too soon is marked, and its thread then
 * copied whole). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, __u64);
} stack_tops SEC(".maps");

/* Per thread: the mapping its stack pointer was last found in. Finding a
 * mapping from a sample (bpf_find_vma in interrupt context) costs ~5 us,
 * more than the copy it shortens; a thread's stack stays in one mapping, so
 * it is looked up once per thread (again only when sp leaves it: a grown
 * main stack, sigaltstack, a coroutine's stack). Freed with the thread. */
struct sw_stack_mapping {
  __u64 start, end;
};

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sw_stack_mapping);
} stack_mappings SEC(".maps");

static long stack_mapping_of_vma(struct task_struct *task, struct vm_area_struct *vma, void *data) {
  struct sw_stack_mapping *m = data;
  m->start = BPF_CORE_READ(vma, vm_start);
  m->end = BPF_CORE_READ(vma, vm_end);
  return 0;
}

/* Bytes from sp to the end of its mapping, or 0 when unknown. */
static __always_inline __u64 stack_room(struct task_struct *task, __u64 sp) {
  struct sw_stack_mapping *m = bpf_task_storage_get(&stack_mappings, task, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!m) return 0;
  if (sp >= m->start && sp < m->end) return m->end - sp;
  struct sw_stack_mapping found = {0, 0};
  if (bpf_find_vma(task, sp, stack_mapping_of_vma, &found, 0) != 0 || sp < found.start || sp >= found.end)
    return 0; /* the mapping lock is held (sampled inside mmap): try again next time */
  m->start = found.start;
  m->end = found.end;
  return found.end - sp;
}

static __always_inline void forget_stack_mapping(struct task_struct *task) {
  struct sw_stack_mapping *m = bpf_task_storage_get(&stack_mappings, task, NULL, 0);
  if (m) {
    m->start = 0;
    m->end = 0;
  }
}

/* Fills regs and the top of the current task's user stack. A read must lie
 * wholly in mapped memory, and the stack may end less than
 * SW_USER_STACK_BYTES above sp (a thread's stack top, main's environment), so
 * shorter copies are tried in turn. */
static __always_inline void copy_user_stack(struct sw_stack_sample *e) {
  struct task_struct *task = bpf_get_current_task_btf();
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  e->regs.ip = BPF_CORE_READ(regs, ip);
  e->regs.sp = BPF_CORE_READ(regs, sp);
  e->regs.bp = BPF_CORE_READ(regs, bp);
  e->regs.bx = BPF_CORE_READ(regs, bx);
  e->regs.r12 = BPF_CORE_READ(regs, r12);
  e->regs.r13 = BPF_CORE_READ(regs, r13);
  e->regs.r14 = BPF_CORE_READ(regs, r14);
  e->regs.r15 = BPF_CORE_READ(regs, r15);
  void *sp = (void *)e->regs.sp;
  e->stack_len = 0;
  /* What lies between sp and the end of its mapping, 16 KiB at most: a
   * thread's stack ends with its thread block a few KiB above its outermost
   * frame, the main thread's with its environment; and then only up to the
   * top the thread's stacks are known to reach. */
  __u64 room = stack_room(task, e->regs.sp);
  if (room > SW_USER_STACK_BYTES) room = SW_USER_STACK_BYTES;
  if (room > 0) {
    __u32 tid = e->tid;
    __u64 *top = bpf_map_lookup_elem(&stack_tops, &tid);
    if (top && *top > e->regs.sp && *top - e->regs.sp < room) {
      room = *top - e->regs.sp;
      e->flags |= SW_SAMPLE_STACK_TRIMMED;
    }
    if (copy_up_to(e, sp, (__u32)room)) return;
    e->flags &= ~SW_SAMPLE_STACK_TRIMMED;
    forget_stack_mapping(task); /* remapped since it was looked up: look again next time */
  }
  /* Not known: the stack mapping ends on a page boundary, and a read must
   * not cross it: try the copies that end on each of the next pages,
   * largest first. The main thread's stack often ends a few KiB above sp
   * (its environment), so fixed sizes would lose the outermost frames. */
  __u32 in_page = e->regs.sp & 4095;
  if (copy_up_to(e, sp, 5 * 4096 - in_page)) return;
  if (copy_up_to(e, sp, 4 * 4096 - in_page)) return;
  if (copy_up_to(e, sp, 3 * 4096 - in_page)) return;
  if (copy_up_to(e, sp, 2 * 4096 - in_page)) return;
  copy_up_to(e, sp, 4096 - in_page);
}

#endif /* STACKWATCH_BPF_COMMON_H */
