// SPDX-License-Identifier: GPL-2.0
/* Process tracking: follows children and threads of targets through fork
 * and clone, reports exec (new mappings, new name) and exit to user space.
 * tp_btf attachments: no tracefs needed.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SW_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} proc_drops SEC(".maps");

/* Add the children of targets to the targets (set before load). */
const volatile bool follow_children = false;

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 parent_tgid = BPF_CORE_READ(parent, tgid);
  __u32 child_tgid = BPF_CORE_READ(child, tgid);
  __u32 child_pid = BPF_CORE_READ(child, pid);
  if (child_pid != child_tgid) return 0; /* a new thread: its tgid is already followed */
  if (!filter_targets) return 0;
  if (!follow_children || !bpf_map_lookup_elem(&targets, &parent_tgid)) return 0;
  __u8 one = 1;
  bpf_map_update_elem(&targets, &child_tgid, &one, BPF_ANY);
  emit_proc_event(&proc_drops, SW_EVENT_FORK, child_tgid, child_pid, parent_tgid, child);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  if (!is_target(tgid)) return 0;
  /* Only processes user space already knows about need a new snapshot;
   * others are announced on their first sample. */
  if (!bpf_map_lookup_elem(&seen, &tgid) && !filter_targets) return 0;
  emit_proc_event(&proc_drops, SW_EVENT_EXEC, tgid, BPF_CORE_READ(p, pid), 0, p);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p) {
  __u32 tgid = BPF_CORE_READ(p, tgid);
  __u32 pid = BPF_CORE_READ(p, pid);
  if (pid != tgid) return 0; /* a thread, not the process */
  /* Deleting tells whether it was there; the verifier rejects combining
   * two lookup results (pointers) in one expression. */
  long known = bpf_map_delete_elem(&seen, &tgid) == 0;
  long target = filter_targets ? bpf_map_delete_elem(&targets, &tgid) == 0 : 0;
  if (!known && !target) return 0;
  emit_proc_event(&proc_drops, SW_EVENT_EXIT, tgid, pid, 0, p);
  return 0;
}
