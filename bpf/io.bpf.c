// SPDX-License-Identifier: GPL-2.0
/* I/O stacks: which code paths read, write and flush, and which ones make
 * the disk work.
 *
 * System calls (tp_btf/sys_enter + tp_btf/sys_exit, the raw syscall
 * tracepoints: this kernel refuses fentry/fexit and has no kprobe PMU): at
 * entry, for the calls that move bytes through a file descriptor or flush one
 * (x86_64 numbers only; 32-bit compat tasks use other numbers and are not
 * seen), the entry time and the descriptor's kind; at exit, calls, bytes
 * (positive return values) and time are added to the thread's (user stack,
 * operation, fd kind) entry. The user stack is taken at exit, not entry: it
 * is the same stack, and taken there it always belongs to the stack map of
 * the buffer the count goes to, even when user space flips buffers while
 * the call sleeps.
 *
 * Block I/O (tp_btf/block_io_start, block_rq_issue, block_rq_complete): a
 * request gets the stacks of the task that submitted it (block_io_start runs
 * in the submitter's context) and its latency is issue to completion.
 * Attribution is to whoever submitted the request: O_DIRECT writes, reads
 * and fsync's own writes are the process's, but buffered writes reach the
 * disk through writeback, so their requests are attributed to a kworker
 * (the "flush-254:0" writeback worker) or, for ext4's journal, to jbd2 --
 * honest, since those threads submit them; when recording only some
 * processes (a COMMAND, -p), such requests are not recorded at all.
 * Requests that never pass block_io_start (the block layer's own cache
 * flushes, passthrough commands) are attributed at block_rq_issue to the
 * task issuing them, often a kblockd worker.
 *
 * Counts and syscall stacks are double-buffered like oncpu.bpf.c. Block
 * request stacks live in their own map that is never cleared: a request
 * submitted in one interval may complete in the next.
 */
#include "common.bpf.h"
#include "io.h"

char LICENSE[] SEC("license") = "GPL";

struct counts_map {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct sw_io_key);
  __type(value, struct sw_io_value);
};
struct stacks_map {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, SW_MAX_STACK_DEPTH * sizeof(__u64));
};

struct counts_map io_counts0 SEC(".maps");
struct counts_map io_counts1 SEC(".maps");
struct stacks_map io_stacks0 SEC(".maps");
struct stacks_map io_stacks1 SEC(".maps");
struct stacks_map block_stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} io_drops SEC(".maps");

/* A thread inside one of the traced system calls (start_ns 0: none). */
struct io_call {
  __u64 start_ns;
  __u32 op;      /* enum sw_io_op */
  __u32 fd_kind; /* enum sw_io_fd_kind */
};

/* Per-thread storage rather than a hash by tid: it costs a pointer lookup
 * on the hot path instead of a hash update and delete per call, and the
 * kernel frees it with the thread (exit never returns to clean up). */
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct io_call);
} io_calls SEC(".maps");

/* A block request between submission and completion. */
struct io_request {
  __u64 issue_ns; /* 0 until issued */
  __u64 bytes;    /* completed so far (a request may complete in parts) */
  __u32 tgid;
  __u32 tid;
  __s32 kernel_stack_id;
  __s32 user_stack_id;
  __u32 recorded; /* 0: a request of a process not recorded (see note_request) */
  __u32 pad;
  __u64 caller; /* as sw_io_key.caller */
  char comm[SW_COMM_LEN];
  char process_comm[SW_COMM_LEN];
};

/* LRU: a request the driver never completes through the tracepoint must
 * not hold its slot for ever. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64); /* struct request * */
  __type(value, struct io_request);
} io_requests SEC(".maps");

/* Frameless system call sites (struct sw_io_site -> offset of the return
 * address from the user rsp), filled by user space. Sized for the sites of
 * every executable file of a busy machine: libc has ~300 of them. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct sw_io_site);
  __type(value, __u32);
} io_sites SEC(".maps");

volatile __u32 active_buffer = 0;

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
static __always_inline int op_of_syscall(long nr) {
  switch (nr) {
    case 0: return SW_IO_READ;
    case 1: return SW_IO_WRITE;
    case 17: return SW_IO_PREAD64;
    case 18: return SW_IO_PWRITE64;
    case 19: return SW_IO_READV;
    case 20: return SW_IO_WRITEV;
    case 44: return SW_IO_SENDTO;
    case 45: return SW_IO_RECVFROM;
    case 46: return SW_IO_SENDMSG;
    case 47: return SW_IO_RECVMSG;
    case 74: return SW_IO_FSYNC;
    case 75: return SW_IO_FDATASYNC;
    case 295: return SW_IO_PREADV;  /* preadv */
    case 296: return SW_IO_PWRITEV; /* pwritev */
    case 327: return SW_IO_PREADV;  /* preadv2 */
    case 328: return SW_IO_PWRITEV; /* pwritev2 */
  }
  return -1;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

/* Turns a kernel pointer read as a number into one the program may load
 * fields through directly (a fault-safe load, far cheaper than a
 * bpf_probe_read_kernel call per field). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* The kind of the current task's descriptor fd: current->files->fdt->fd[fd]
 * ->f_inode->i_mode. Read without the file table lock: a racing close or
 * dup2 gives a stale answer for that one call, never a fault. Direct loads
 * through BTF pointers except for the fd array, whose element type (a
 * pointer to a pointer) BTF loads cannot index. */
static __always_inline __u32 fd_kind_of(long fd) {
  if (fd < 0) return SW_FD_OTHER;
  struct task_struct *task = bpf_get_current_task_btf();
  struct files_struct *files = task->files;
  if (!files) return SW_FD_OTHER;
  struct fdtable *fdt = files->fdt;
  if (!fdt) return SW_FD_OTHER;
  if ((unsigned long)fd >= fdt->max_fds) return SW_FD_OTHER;
  struct file **fds = fdt->fd;
  struct file *raw = NULL;
  if (bpf_probe_read_kernel(&raw, sizeof(raw), &fds[fd]) != 0 || !raw) return SW_FD_OTHER;
  struct file *file = bpf_rdonly_cast(raw, bpf_core_type_id_kernel(struct file));
  struct inode *inode = file->f_inode;
  if (!inode) return SW_FD_OTHER;
  umode_t mode = inode->i_mode;
  switch (mode & S_IFMT) {
    case S_IFREG: return SW_FD_FILE;
    case S_IFSOCK: return SW_FD_SOCKET;
    case S_IFIFO: return SW_FD_PIPE;
    case S_IFCHR:
    case S_IFBLK: return SW_FD_DEVICE;
  }
  return SW_FD_OTHER;
}

static __always_inline void add_to(void *counts, const struct sw_io_key *key, __u64 bytes, __u64 ns,
                                   const char *process_comm) {
  struct sw_io_value *v = bpf_map_lookup_elem(counts, key);
  if (v) {
    __sync_fetch_and_add(&v->count, 1);
    __sync_fetch_and_add(&v->bytes, bytes);
    __sync_fetch_and_add(&v->total_ns, ns);
    return;
  }
  struct sw_io_value init = {};
  init.count = 1;
  init.bytes = bytes;
  init.total_ns = ns;
  if (process_comm)
    __builtin_memcpy(init.process_comm, process_comm, sizeof(init.process_comm));
  else
    BPF_CORE_READ_STR_INTO(&init.process_comm, bpf_get_current_task_btf(), group_leader, comm);
  if (bpf_map_update_elem(counts, key, &init, BPF_NOEXIST) != 0) {
    v = bpf_map_lookup_elem(counts, key); /* another CPU inserted it first */
    if (v) {
      __sync_fetch_and_add(&v->count, 1);
      __sync_fetch_and_add(&v->bytes, bytes);
      __sync_fetch_and_add(&v->total_ns, ns);
    } else {
      count_drop(&io_drops, SW_DROP_COUNTS_FULL);
    }
  }
}

struct site_lookup {
  __u64 ip;
  struct sw_io_site site;
};

static long site_of_vma(struct task_struct *task, struct vm_area_struct *vma, void *data) {
  struct site_lookup *l = data;
  struct file *file = vma->vm_file;
  if (!file) return 0;
  struct inode *inode = BPF_CORE_READ(file, f_inode);
  l->site.ino = BPF_CORE_READ(inode, i_ino);
  l->site.dev = BPF_CORE_READ(inode, i_sb, s_dev);
  l->site.file_offset = l->ip - vma->vm_start + (vma->vm_pgoff << 12);
  return 0;
}

/* The frame-pointer walk from a system call's registers skips the caller
 * of a function that keeps no frame (glibc's write() and the like): when
 * the user ip is one of the sites user space listed, the caller's return
 * address, read where the site's CFI says it is. 0 otherwise. */
static __always_inline __u64 frameless_caller(__u64 ip, __u64 sp) {
  struct site_lookup l = {};
  l.ip = ip;
  if (bpf_find_vma(bpf_get_current_task_btf(), ip, site_of_vma, &l, 0) != 0 || l.site.ino == 0) return 0;
  __u32 *ra_sp_offset = bpf_map_lookup_elem(&io_sites, &l.site);
  if (!ra_sp_offset) return 0;
  __u64 ra = 0;
  if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(sp + *ra_sp_offset)) != 0) return 0;
  return ra;
}

/* The user stack id of the current task in `stacks`; kernel threads have none. */
static __always_inline __s32 user_stack_id(void *ctx, void *stacks) {
  long id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
  if (id == -EFAULT) {
    if (BPF_CORE_READ(bpf_get_current_task_btf(), mm) != NULL) count_drop(&io_drops, SW_DROP_USER_STACK);
    return (__s32)id;
  }
  return classify_stackid(&io_drops, id, SW_DROP_USER_STACK);
}

static __always_inline void add_call(void *ctx, void *counts, void *stacks, __u32 tgid, __u32 tid,
                                     const struct io_call *call, __u64 bytes, __u64 ns, __u64 caller) {
  struct sw_io_key key = {};
  key.tgid = tgid;
  key.tid = tid;
  /* The kernel stack at syscall exit is only the exit path: not taken. */
  key.kernel_stack_id = -EFAULT;
  key.user_stack_id = user_stack_id(ctx, stacks);
  key.op = call->op;
  key.fd_kind = call->fd_kind;
  key.caller = caller;
  bpf_get_current_comm(&key.comm, sizeof(key.comm));
  add_to(counts, &key, bytes, ns, NULL);
}

/* DWARF mode: the call goes to user space with a copy of the caller's
 * stack, to be unwound there (complete without frame pointers) and counted
 * under that stack. False when the copy ring is full: the call is then
 * counted here under its frame-pointer stack (and the full ring counted),
 * so no call is lost, only its outer frames. Each copy costs the calling
 * thread ~2 us; the ring's size bounds how many calls a second get one. */
static __always_inline bool send_copy(__u32 tgid, __u32 tid, const struct io_call *call, __u64 bytes, __u64 ns) {
  struct sw_stack_sample *e = start_stack_sample(bpf_get_current_task_btf(), tgid, tid, SW_KIND_IO);
  if (!e) return false;
  e->kernel_stack_id = -EFAULT;
  e->io_bytes = bytes;
  e->io_ns = ns;
  e->io_op = call->op;
  e->io_fd_kind = call->fd_kind;
  copy_user_stack(e);
  if (send_stack_sample(e) != 0) {
    count_drop(&io_drops, SW_DROP_COPY_FALLBACK);
    return false;
  }
  return true;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(io_sys_enter, struct pt_regs *regs, long nr) {
  int op = op_of_syscall(nr);
  if (op < 0) return 0;
  if (!is_target(bpf_get_current_pid_tgid() >> 32)) return 0;
  struct io_call *call =
      bpf_task_storage_get(&io_calls, bpf_get_current_task_btf(), NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!call) {
    count_drop(&io_drops, SW_DROP_OTHER); /* out of memory, or storage busy on this CPU */
    return 0;
  }
  call->op = op;
  call->fd_kind = fd_kind_of((long)(int)regs->di); /* every traced call's fd is its first argument */
  call->start_ns = bpf_ktime_get_ns();
  return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(io_sys_exit, struct pt_regs *regs, long ret) {
  /* Every system call of the machine exits through here: leave at once
   * unless it is one of ours (orig_ax holds the syscall number). */
  if (op_of_syscall(regs->orig_ax) < 0) return 0;
  struct io_call *p = bpf_task_storage_get(&io_calls, bpf_get_current_task_btf(), NULL, 0);
  if (!p || p->start_ns == 0) return 0;
  struct io_call call = *p;
  p->start_ns = 0;
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;
  __u64 ns = bpf_ktime_get_ns() - call.start_ns;
  __u64 bytes = ret > 0 && call.op != SW_IO_FSYNC && call.op != SW_IO_FDATASYNC ? (__u64)ret : 0;
  __u32 tgid = id >> 32;
  note_seen(&io_drops, tgid, tid);
  if (copy_user_stacks && send_copy(tgid, tid, &call, bytes, ns)) return 0;
  __u64 caller = frameless_caller(regs->ip, regs->sp);
  if (active_buffer == 0)
    add_call(ctx, &io_counts0, &io_stacks0, tgid, tid, &call, bytes, ns, caller);
  else
    add_call(ctx, &io_counts1, &io_stacks1, tgid, tid, &call, bytes, ns, caller);
  return 0;
}

/* Takes note of a request's submitter: the current task. Requests of
 * processes not recorded get an entry too (without stacks), so that
 * block_rq_issue, which may run in a recorded process that dispatches the
 * queue, never mistakes them for requests without a submitter. */
static __always_inline void note_request(void *ctx, __u64 rq, __u64 issue_ns) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  struct io_request r = {};
  r.issue_ns = issue_ns;
  if (!is_target(tgid)) {
    bpf_map_update_elem(&io_requests, &rq, &r, BPF_ANY);
    return;
  }
  r.recorded = 1;
  r.tgid = tgid;
  r.tid = (__u32)id;
  r.kernel_stack_id = classify_stackid(&io_drops, bpf_get_stackid(ctx, &block_stacks, 0), SW_DROP_KERNEL_STACK);
  r.user_stack_id = user_stack_id(ctx, &block_stacks);
  if (r.user_stack_id >= 0) {
    /* The submitter's user registers: those of the system call it is in. */
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    r.caller = frameless_caller(BPF_CORE_READ(regs, ip), BPF_CORE_READ(regs, sp));
  }
  bpf_get_current_comm(&r.comm, sizeof(r.comm));
  BPF_CORE_READ_STR_INTO(&r.process_comm, bpf_get_current_task_btf(), group_leader, comm);
  if (r.tid != 0) note_seen(&io_drops, tgid, r.tid);
  bpf_map_update_elem(&io_requests, &rq, &r, BPF_ANY);
}

/* Runs where a bio becomes a request, in the submitter's context. */
SEC("tp_btf/block_io_start")
int BPF_PROG(io_block_start, struct request *rq) {
  note_request(ctx, (__u64)rq, 0);
  return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(io_block_issue, struct request *rq) {
  __u64 key = (__u64)rq;
  __u64 now = bpf_ktime_get_ns();
  struct io_request *r = bpf_map_lookup_elem(&io_requests, &key);
  if (r)
    r->issue_ns = now; /* a requeued request is timed from its last issue */
  else
    note_request(ctx, key, now); /* no block_io_start: cache flushes, passthrough commands */
  return 0;
}

/* REQ_OP_* (include/linux/blk_types.h): the low 8 bits of cmd_flags. */
#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1
#define REQ_OP_FLUSH 2

SEC("tp_btf/block_rq_complete")
int BPF_PROG(io_block_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes) {
  __u64 key = (__u64)rq;
  struct io_request *r = bpf_map_lookup_elem(&io_requests, &key);
  if (!r) return 0;
  if (!r->recorded) {
    bpf_map_delete_elem(&io_requests, &key);
    return 0;
  }
  r->bytes += nr_bytes;
  /* A partial completion leaves the rest in __data_len (not yet reduced
   * here): the request is counted once, when its last part completes. */
  if (nr_bytes < BPF_CORE_READ(rq, __data_len)) return 0;
  __u32 op;
  switch (BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK) {
    case REQ_OP_READ: op = SW_IO_BLOCK_READ; break;
    case REQ_OP_WRITE: op = SW_IO_BLOCK_WRITE; break;
    case REQ_OP_FLUSH: op = SW_IO_BLOCK_FLUSH; break;
    default: /* discards, zeroing, zone commands: not I/O a caller waits on */
      bpf_map_delete_elem(&io_requests, &key);
      return 0;
  }
  if (r->issue_ns != 0) {
    struct sw_io_key k = {};
    k.tgid = r->tgid;
    k.tid = r->tid;
    k.kernel_stack_id = r->kernel_stack_id;
    k.user_stack_id = r->user_stack_id;
    k.op = op;
    k.fd_kind = SW_FD_NONE;
    k.caller = r->caller;
    __builtin_memcpy(k.comm, r->comm, sizeof(k.comm));
    __u64 ns = bpf_ktime_get_ns() - r->issue_ns;
    if (active_buffer == 0)
      add_to(&io_counts0, &k, r->bytes, ns, r->process_comm);
    else
      add_to(&io_counts1, &k, r->bytes, ns, r->process_comm);
  }
  bpf_map_delete_elem(&io_requests, &key);
  return 0;
}
