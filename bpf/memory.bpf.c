// SPDX-License-Identifier: GPL-2.0
/* Memory stacks: which code paths hold memory, which ones free badly, which
 * ones fault pages in.
 *
 * mem_entry (uprobe, every allocator function; the cookie says which) saves
 * the call's size per thread; mem_return (uretprobe) takes the allocating
 * user stack, records the returned address in mem_allocs and adds the block
 * to its stack's entry in mem_outstanding. mem_free and mem_munmap (uprobes)
 * remove the address and subtract the block from the stack that allocated
 * it, whichever thread frees it. Stack ids of live blocks must stay valid as
 * long as the block lives, so mem_stacks is never cleared.
 *
 * Stacks are taken at the return, not the entry: at a function's first
 * instruction the frame-pointer walk skips the direct caller (the kernel
 * adds it only when the function starts with push %rbp or endbr64, and
 * Debian's malloc starts with push %r12); at the return the instruction
 * pointer is the call site and the frame chain is the caller's. Bad frees
 * are seen at an entry (glibc aborts in free): their stacks are read with
 * bpf_get_stack, the return address at the stack pointer put back in, and
 * kept in mem_bad_stacks under a hash of their frames.
 *
 * Nesting: glibc's malloc calls mmap for large blocks, realloc calls malloc
 * for mmapped ones. A call entered with a lower stack pointer than the
 * thread's call in flight is inside it and ignored: the outer call accounts
 * for the block. The return of a call is matched by its stack pointer too.
 *
 * Bad operations (double free, free of an address never allocated, realloc
 * of a freed block, zero-size allocations) and user page faults are counted
 * per (thread, stack) in double-buffered maps, like on-CPU samples. A freed
 * address stays in the mem_freed LRU until it is allocated again, which is
 * how a second free is told from a free of an unknown address; the latter
 * is reported only for processes followed since their exec (mem_fresh).
 *
 * Rate limit: beyond max_events_per_second allocations per CPU, an
 * allocation is not tracked (no stack, no record) and counted. Frees are
 * always processed: a dropped free would leave its block outstanding
 * forever, a dropped allocation only makes the outstanding level a lower
 * bound. Its free finds no record, so once anything was dropped, frees of
 * unknown addresses are no longer reported as bad.
 */
#include "common.bpf.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define PAGE_SIZE 4096ull

/* Set through the skeleton before load. */
const volatile bool traced_from_start = false;
const volatile __u64 max_events_per_second = 0;

/* Becomes 1 when an allocation could not be tracked. */
volatile __u32 lost_allocations = 0;
/* Which of the double-buffered event maps BPF writes to. */
volatile __u32 active_buffer = 0;

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32); /* tid */
  __type(value, struct sw_mem_pending);
} mem_pending SEC(".maps");

/* Not preallocated: sized for a million live blocks, it holds what the
 * processes really have live. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1 << 20);
  __type(key, struct sw_mem_alloc_key);
  __type(value, struct sw_mem_alloc);
} mem_allocs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct sw_mem_alloc_key);
  __type(value, __u8);
} mem_freed SEC(".maps");

/* Processes whose exec was seen while they were targets: every block they
 * free was allocated under the probes. A child forked without an exec
 * frees its parent's blocks, which were recorded under the parent. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} mem_fresh SEC(".maps");

/* Per process: how many execs were seen while it was a target. Blocks
 * of an earlier image are gone with it: user space drops per-stack entries
 * of an older generation. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u32);
} mem_generation SEC(".maps");

/* Not preallocated: an entry user space deletes cannot be reused under a
 * program still writing to it. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 16384);
  __type(key, struct sw_mem_stack_key);
  __type(value, struct sw_mem_outstanding);
} mem_outstanding SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
} mem_stacks SEC(".maps");

/* Stacks of bad operations, by a hash of their frames (see bad_stack_id). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct sw_mem_frames);
} mem_bad_stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sw_mem_frames);
} mem_scratch SEC(".maps");

struct events_map {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct sw_stack_key);
  __type(value, struct sw_stack_value);
};
/* Bad operations: stack ids in mem_bad_stacks. */
struct events_map mem_bad0 SEC(".maps");
struct events_map mem_bad1 SEC(".maps");
/* Page faults: stack ids in fault_stacks of the same buffer, cleared at each drain. */
struct events_map mem_faults0 SEC(".maps");
struct events_map mem_faults1 SEC(".maps");

struct fault_stacks_map {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 4096);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
};
struct fault_stacks_map fault_stacks0 SEC(".maps");
struct fault_stacks_map fault_stacks1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} mem_drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_MEM_LOST_MAX);
  __type(key, __u32);
  __type(value, __u64);
} mem_lost SEC(".maps");

/* Slot 0: allocations, slot 1: page faults. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, struct sw_mem_rate);
} mem_rate SEC(".maps");

static __always_inline void lose(__u32 reason) { count_drop(&mem_lost, reason); }

static __always_inline bool rate_ok(__u32 slot) {
  if (max_events_per_second == 0) return true;
  struct sw_mem_rate *r = bpf_map_lookup_elem(&mem_rate, &slot);
  if (!r) return true;
  __u64 now = bpf_ktime_get_ns();
  if (now - r->window_start_ns >= 1000000000ull) {
    r->window_start_ns = now;
    r->events = 0;
  }
  if (r->events >= max_events_per_second) return false;
  r->events++;
  return true;
}

static __always_inline __s32 user_stack(void *ctx, void *stacks) {
  return classify_stackid(&mem_drops, bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK), SW_DROP_USER_STACK);
}

static __always_inline void add_event(void *counts, __u32 kind, __s32 stack_id) {
  __u64 id = bpf_get_current_pid_tgid();
  struct sw_stack_key key = {};
  key.tgid = id >> 32;
  key.tid = (__u32)id;
  key.kernel_stack_id = -1;
  key.user_stack_id = stack_id;
  key.state = kind;
  bpf_get_current_comm(key.comm, sizeof(key.comm));
  struct sw_stack_value *v = bpf_map_lookup_elem(counts, &key);
  if (v) {
    __sync_fetch_and_add(&v->count, 1);
    return;
  }
  struct sw_stack_value init = {};
  init.count = 1;
  struct task_struct *task = bpf_get_current_task_btf();
  BPF_CORE_READ_STR_INTO(&init.process_comm, task, group_leader, comm);
  if (bpf_map_update_elem(counts, &key, &init, BPF_NOEXIST) != 0) {
    v = bpf_map_lookup_elem(counts, &key);
    if (v)
      __sync_fetch_and_add(&v->count, 1);
    else
      count_drop(&mem_drops, SW_DROP_COUNTS_FULL);
  }
  note_seen(&mem_drops, key.tgid, key.tid);
}

/* The user stack of a bad operation, kept in mem_bad_stacks under a hash of
 * its frames. At a function's entry (at_entry) the walk misses the direct
 * caller: its return address, at the stack pointer, goes back in as the
 * second frame. */
static __noinline __s32 bad_stack_id(void *ctx, bool at_entry) {
  __u32 zero = 0;
  struct sw_mem_frames *f = bpf_map_lookup_elem(&mem_scratch, &zero);
  if (!f) return -1;
  long n;
  if (at_entry)
    n = bpf_get_stack(ctx, &f->ips[1], (SW_MEM_STACK_DEPTH - 1) * sizeof(__u64), BPF_F_USER_STACK);
  else
    n = bpf_get_stack(ctx, &f->ips[0], SW_MEM_STACK_DEPTH * sizeof(__u64), BPF_F_USER_STACK);
  if (n <= 0) {
    count_drop(&mem_drops, SW_DROP_USER_STACK);
    return -1;
  }
  __u32 depth = (__u32)(n / sizeof(__u64));
  if (at_entry) {
    __u64 ret = 0;
    bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP((struct pt_regs *)ctx));
    f->ips[0] = f->ips[1];
    f->ips[1] = ret;
    depth++;
  }
  __u64 hash = 14695981039346656037ull; /* FNV-1a over the frames; the rest zeroed */
#pragma clang loop unroll(disable)
  for (int i = 0; i < SW_MEM_STACK_DEPTH; i++) {
    if (i >= depth) f->ips[i] = 0;
    hash = (hash ^ f->ips[i]) * 1099511628211ull;
  }
  __u32 id = (__u32)(hash ^ (hash >> 32)) & 0x7fffffff;
  if (bpf_map_update_elem(&mem_bad_stacks, &id, f, BPF_NOEXIST) != 0 && !bpf_map_lookup_elem(&mem_bad_stacks, &id)) {
    count_drop(&mem_drops, SW_DROP_STACK_MAP_FULL);
    return -1;
  }
  return (__s32)id;
}

/* A bad operation, counted under its stack (see bad_stack_id). */
static __always_inline void bad_op(void *ctx, __u32 kind, bool at_entry) {
  __s32 stack_id = bad_stack_id(ctx, at_entry);
  if (active_buffer == 0)
    add_event(&mem_bad0, kind, stack_id);
  else
    add_event(&mem_bad1, kind, stack_id);
}

/* Adds a block to its stack's outstanding entry; false if it has none. */
static __always_inline bool add_outstanding(__u32 tgid, __u32 tid, __s32 stack_id, __u64 size) {
  struct sw_mem_stack_key key = {.tgid = tgid, .user_stack_id = stack_id};
  struct sw_mem_outstanding *v = bpf_map_lookup_elem(&mem_outstanding, &key);
  if (v) {
    __sync_fetch_and_add(&v->bytes, (__s64)size);
    __sync_fetch_and_add(&v->count, 1);
    return true;
  }
  struct sw_mem_outstanding init = {};
  init.bytes = (__s64)size;
  init.count = 1;
  init.tid = tid;
  __u32 *gen = bpf_map_lookup_elem(&mem_generation, &tgid);
  init.generation = gen ? *gen : 0;
  bpf_get_current_comm(init.comm, sizeof(init.comm));
  struct task_struct *task = bpf_get_current_task_btf();
  BPF_CORE_READ_STR_INTO(&init.process_comm, task, group_leader, comm);
  if (bpf_map_update_elem(&mem_outstanding, &key, &init, BPF_NOEXIST) == 0) return true;
  v = bpf_map_lookup_elem(&mem_outstanding, &key); /* another CPU inserted it first */
  if (v) {
    __sync_fetch_and_add(&v->bytes, (__s64)size);
    __sync_fetch_and_add(&v->count, 1);
    return true;
  }
  lose(SW_MEM_LOST_STACKS_FULL);
  return false;
}

static __always_inline void sub_outstanding(__u32 tgid, const struct sw_mem_alloc *a, __u64 size, __s64 blocks) {
  if (!a->counted) return;
  struct sw_mem_stack_key key = {.tgid = tgid, .user_stack_id = a->user_stack_id};
  struct sw_mem_outstanding *v = bpf_map_lookup_elem(&mem_outstanding, &key);
  if (!v) return;
  __sync_fetch_and_add(&v->bytes, -(__s64)size);
  __sync_fetch_and_add(&v->count, -blocks);
}

/* Removes a live block; true (and its record in *out) if this call removed it. */
static __always_inline bool take_alloc(__u32 tgid, __u64 addr, struct sw_mem_alloc *out) {
  struct sw_mem_alloc_key key = {.tgid = tgid, .addr = addr};
  struct sw_mem_alloc *a = bpf_map_lookup_elem(&mem_allocs, &key);
  if (!a) return false;
  *out = *a;
  /* Only one of two racing frees of the block deletes it. */
  return bpf_map_delete_elem(&mem_allocs, &key) == 0;
}

static __always_inline void mark_freed(__u32 tgid, __u64 addr) {
  struct sw_mem_alloc_key key = {.tgid = tgid, .addr = addr};
  __u8 one = 1;
  bpf_map_update_elem(&mem_freed, &key, &one, BPF_ANY);
}

static __always_inline bool was_freed(__u32 tgid, __u64 addr) {
  struct sw_mem_alloc_key key = {.tgid = tgid, .addr = addr};
  return bpf_map_lookup_elem(&mem_freed, &key) != NULL;
}

/* Whether an unknown address was surely never allocated: the process was
 * followed since its exec and no allocation was ever dropped. */
static __always_inline bool never_allocated(__u32 tgid) {
  return traced_from_start && !lost_allocations && bpf_map_lookup_elem(&mem_fresh, &tgid) != NULL;
}

/* A block handed out at addr. */
static __always_inline void record_alloc(__u32 tgid, __u32 tid, __u64 addr, __u64 size, __s32 stack_id) {
  struct sw_mem_alloc_key key = {.tgid = tgid, .addr = addr};
  struct sw_mem_alloc a = {.size = size, .user_stack_id = stack_id};
  a.counted = add_outstanding(tgid, tid, stack_id, size);
  if (bpf_map_update_elem(&mem_allocs, &key, &a, BPF_NOEXIST) == 0) {
    note_seen(&mem_drops, tgid, tid);
    return;
  }
  /* A record already there: its free went unseen (the address is live
   * again, so the old block is gone). Replace it. */
  struct sw_mem_alloc old;
  if (take_alloc(tgid, addr, &old)) sub_outstanding(tgid, &old, old.size, 1);
  if (bpf_map_update_elem(&mem_allocs, &key, &a, BPF_NOEXIST) != 0) {
    lose(SW_MEM_LOST_ALLOCS_FULL);
    lost_allocations = 1;
    sub_outstanding(tgid, &a, size, 1);
  }
}

/* free(ptr), realloc(ptr, 0), and realloc's old block. A bad one is
 * reported only when the program called, not libc itself (see
 * called_from_libc). */
static __always_inline void free_block(void *ctx, __u32 tgid, __u64 ptr, __u32 bad_kind, bool report) {
  struct sw_mem_alloc a;
  if (take_alloc(tgid, ptr, &a)) {
    sub_outstanding(tgid, &a, a.size, 1);
    mark_freed(tgid, ptr);
    return;
  }
  if (!report) return;
  if (was_freed(tgid, ptr))
    bad_op(ctx, bad_kind, true);
  else if (never_allocated(tgid))
    bad_op(ctx, SW_MEM_EV_FREE_UNKNOWN, true);
}

/* The attach cookie: the function (enum sw_mem_op) in bits 0-7, its offset
 * in libc's executable segment in bits 8-31, the segment's size in bits
 * 32-63. */
#define COOKIE_OP(c) ((__u32)((c) & 0xff))
#define COOKIE_TEXT_OFFSET(c) (((c) >> 8) & 0xffffff)
#define COOKIE_TEXT_SIZE(c) ((c) >> 32)

/* Whether a return address is in libc's own code. glibc frees blocks
 * internally that look bad from outside: at thread exit it frees the
 * blocks still cached in the thread's tcache, which the program had
 * already freed, and the tcache itself, which it never got from malloc. */
static __always_inline bool called_from_libc(struct pt_regs *ctx, __u64 cookie, __u64 ret) {
  __u64 text_start = PT_REGS_IP(ctx) - COOKIE_TEXT_OFFSET(cookie);
  return ret - text_start < COOKIE_TEXT_SIZE(cookie);
}

static __always_inline __u64 return_address(struct pt_regs *ctx) {
  __u64 ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
  return ret;
}

/* Whether a call entered at sp is inside the thread's call in flight. A
 * free has no return probe (it would double its cost): it is known to be
 * still running while its return address is still where it was. */
static __always_inline bool nested(const struct sw_mem_pending *in_flight, __u64 sp) {
  if (!in_flight || in_flight->op == SW_MEM_NONE || sp >= in_flight->sp) return false;
  if (in_flight->op != SW_MEM_FREE) return true;
  __u64 ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)in_flight->sp);
  return ret == in_flight->ret;
}

static __always_inline bool allocating(__u32 op) { return op != SW_MEM_MMAP && op != SW_MEM_MUNMAP && op != SW_MEM_FREE; }

SEC("uprobe")
int mem_entry(struct pt_regs *ctx) {
  __u64 cookie = bpf_get_attach_cookie(ctx);
  __u32 op = COOKIE_OP(cookie);
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (!is_target(tgid)) return 0;
  __u64 sp = PT_REGS_SP(ctx);
  struct sw_mem_pending *in_flight = bpf_map_lookup_elem(&mem_pending, &tid);
  if (nested(in_flight, sp)) return 0; /* the outer call counts */

  struct sw_mem_pending p = {};
  p.op = op;
  p.sp = sp;
  __u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
  switch (op) {
    case SW_MEM_MALLOC:
    case SW_MEM_VALLOC:
      p.size = a1;
      break;
    case SW_MEM_PVALLOC:
      p.size = (a1 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
      if (p.size == 0) p.size = PAGE_SIZE; /* glibc: pvalloc(0) is one page */
      break;
    case SW_MEM_CALLOC:
      p.size = a1 * a2; /* an overflow fails in calloc: its NULL is ignored */
      if (a1 == 0 || a2 == 0) p.size = 0;
      break;
    case SW_MEM_REALLOC:
      p.ptr = a1;
      p.size = a2;
      break;
    case SW_MEM_MEMALIGN:
      p.size = a2;
      break;
    case SW_MEM_POSIX_MEMALIGN:
      p.ptr = a1;
      p.size = a3;
      break;
    case SW_MEM_MMAP: {
      __u64 flags = PT_REGS_PARM4(ctx);
      /* File mappings are not allocations; MAP_FIXED replaces a mapping. */
      if (!(flags & MAP_ANONYMOUS) || (flags & MAP_FIXED)) return 0;
      p.size = (a2 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
      break;
    }
    default:
      return 0;
  }

  if (op == SW_MEM_REALLOC && p.ptr != 0) {
    bool report = !called_from_libc(ctx, cookie, return_address(ctx));
    if (p.size == 0) {
      free_block(ctx, tgid, p.ptr, SW_MEM_EV_DOUBLE_FREE, report); /* realloc(p, 0) frees p, returns NULL */
      return 0;
    }
    /* The old block goes now: once realloc frees it, another thread may be
     * handed the same address before this call returns. */
    if (take_alloc(tgid, p.ptr, &p.old)) {
      sub_outstanding(tgid, &p.old, p.old.size, 1);
      p.has_old = 1;
    } else if (report && was_freed(tgid, p.ptr)) {
      bad_op(ctx, SW_MEM_EV_REALLOC_FREED, true);
    } else if (report && never_allocated(tgid)) {
      bad_op(ctx, SW_MEM_EV_FREE_UNKNOWN, true);
    }
  }

  if (in_flight) {
    *in_flight = p; /* in place: an LRU update allocates a new element */
  } else if (bpf_map_update_elem(&mem_pending, &tid, &p, BPF_ANY) != 0) {
    lose(SW_MEM_LOST_THREADS_FULL);
    lost_allocations = 1;
  }
  return 0;
}

SEC("uretprobe")
int mem_return(struct pt_regs *ctx) {
  __u32 op = COOKIE_OP(bpf_get_attach_cookie(ctx));
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  struct sw_mem_pending *in_flight = bpf_map_lookup_elem(&mem_pending, &tid);
  /* The return pops the return address the entry saw at sp. */
  if (!in_flight || in_flight->op != op || in_flight->sp + 8 != PT_REGS_SP(ctx)) return 0;
  struct sw_mem_pending p = *in_flight;
  in_flight->op = SW_MEM_NONE;

  __u64 addr = PT_REGS_RC(ctx);
  if (op == SW_MEM_POSIX_MEMALIGN) {
    __u64 result = 0;
    if (addr != 0)
      addr = 0; /* an error number: nothing allocated */
    else if (bpf_probe_read_user(&result, sizeof(result), (void *)p.ptr) != 0)
      lose(SW_MEM_LOST_READ_FAILED);
    else
      addr = result;
  } else if (op == SW_MEM_MMAP && addr == ~0ull) {
    addr = 0; /* MAP_FAILED */
  }
  if (addr == 0) {
    /* Failed: realloc left the old block as it was. */
    if (p.has_old) {
      struct sw_mem_alloc_key key = {.tgid = tgid, .addr = p.ptr};
      p.old.counted = p.old.counted && add_outstanding(tgid, tid, p.old.user_stack_id, p.old.size);
      bpf_map_update_elem(&mem_allocs, &key, &p.old, BPF_ANY);
    }
    return 0;
  }
  if (p.has_old && p.ptr != addr) mark_freed(tgid, p.ptr);
  /* The address is live again: a later free of it is not a double free. */
  struct sw_mem_alloc_key fkey = {.tgid = tgid, .addr = addr};
  bpf_map_delete_elem(&mem_freed, &fkey);
  if (allocating(op) && p.size == 0) bad_op(ctx, SW_MEM_EV_ZERO_SIZE, false);
  if (!rate_ok(0)) {
    lose(SW_MEM_LOST_RATE_LIMITED);
    lost_allocations = 1;
    return 0;
  }
  record_alloc(tgid, tid, addr, p.size, user_stack(ctx, &mem_stacks));
  return 0;
}

SEC("uprobe")
int mem_free(struct pt_regs *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (!is_target(tgid)) return 0;
  __u64 ptr = PT_REGS_PARM1(ctx);
  if (ptr == 0) return 0;
  __u64 sp = PT_REGS_SP(ctx), ret = return_address(ctx);
  /* In flight: glibc's free may set up the thread's cache, mmap included. */
  struct sw_mem_pending *in_flight = bpf_map_lookup_elem(&mem_pending, &tid);
  if (in_flight) {
    if (nested(in_flight, sp)) return 0; /* inside an allocator call: it accounts for the block */
    in_flight->op = SW_MEM_FREE;
    in_flight->sp = sp;
    in_flight->ret = ret;
  } else {
    struct sw_mem_pending p = {.op = SW_MEM_FREE, .sp = sp, .ret = ret};
    bpf_map_update_elem(&mem_pending, &tid, &p, BPF_ANY);
  }
  free_block(ctx, tgid, ptr, SW_MEM_EV_DOUBLE_FREE, !called_from_libc(ctx, bpf_get_attach_cookie(ctx), ret));
  return 0;
}

SEC("uprobe")
int mem_munmap(struct pt_regs *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!is_target(tgid)) return 0;
  __u64 addr = PT_REGS_PARM1(ctx);
  __u64 len = (PT_REGS_PARM2(ctx) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  struct sw_mem_alloc a;
  /* Unknown ranges (thread stacks, the allocator's own heaps) are not bad:
   * only mmap's blocks are tracked. */
  if (!take_alloc(tgid, addr, &a)) return 0;
  if (len >= a.size) {
    sub_outstanding(tgid, &a, a.size, 1);
    return 0;
  }
  /* The front of the block is unmapped: the rest stays live. */
  sub_outstanding(tgid, &a, len, 0);
  struct sw_mem_alloc_key key = {.tgid = tgid, .addr = addr + len};
  a.size -= len;
  if (bpf_map_update_elem(&mem_allocs, &key, &a, BPF_ANY) != 0) {
    lose(SW_MEM_LOST_ALLOCS_FULL);
    sub_outstanding(tgid, &a, a.size, 1);
  }
  return 0;
}

/* DWARF mode: the fault goes to user space with a copy of the faulting
 * thread's user stack (the registers are those it faulted with), unwound
 * there. False when the copy ring is full: the fault is then counted here
 * under its frame-pointer stack (see io.bpf.c's send_copy). */
static __always_inline bool send_fault_copy(__u32 tgid, __u32 tid) {
  struct sw_stack_sample *e = start_stack_sample(bpf_get_current_task_btf(), tgid, tid, SW_KIND_PAGE_FAULT);
  if (!e) return false;
  copy_user_stack(e);
  if (send_stack_sample(e) != 0) {
    count_drop(&mem_drops, SW_DROP_COPY_FALLBACK);
    return false;
  }
  return true;
}

static __always_inline int count_fault(void *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!is_target(id >> 32)) return 0;
  if (!rate_ok(1)) {
    lose(SW_MEM_LOST_FAULTS_RATE);
    return 0;
  }
  if (copy_user_stacks && send_fault_copy(id >> 32, (__u32)id)) return 0;
  if (active_buffer == 0)
    add_event(&mem_faults0, SW_MEM_EV_PAGE_FAULT, user_stack(ctx, &fault_stacks0));
  else
    add_event(&mem_faults1, SW_MEM_EV_PAGE_FAULT, user_stack(ctx, &fault_stacks1));
  return 0;
}

/* User page faults: the x86 tracepoint where the kernel has it... */
SEC("tp_btf/page_fault_user")
int BPF_PROG(mem_fault_tp, unsigned long address, struct pt_regs *regs, unsigned long error_code) {
  return count_fault(ctx);
}

/* ...else the software page-fault event, sampling every fault on each CPU. */
SEC("perf_event")
int mem_fault_perf(struct bpf_perf_event_data *ctx) { return count_fault(ctx); }

SEC("tp_btf/sched_process_exec")
int BPF_PROG(mem_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  if (!is_target(tgid)) return 0;
  __u32 *gen = bpf_map_lookup_elem(&mem_generation, &tgid);
  if (gen) {
    __sync_fetch_and_add(gen, 1);
  } else {
    __u32 first = 1;
    bpf_map_update_elem(&mem_generation, &tgid, &first, BPF_NOEXIST);
  }
  if (!traced_from_start) return 0;
  __u8 one = 1;
  bpf_map_update_elem(&mem_fresh, &tgid, &one, BPF_ANY);
  return 0;
}
