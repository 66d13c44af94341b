/* The cost every sampling profiler pays before it does anything: a
 * cpu-clock sampling event on every online CPU at the given rate, with no
 * program attached and no ring buffer, so each sample is the timer
 * interrupt and the kernel's overflow handling alone (no stack is walked,
 * nothing is written). Runs until SIGINT or SIGTERM. overhead_bench runs the
 * workload under it to show how much of a profiler's slowdown is this floor
 * (on a VM, where timer interrupts are dear, most of it at 999 Hz). */
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  long hz = argc > 1 ? strtol(argv[1], NULL, 10) : 49;
  if (hz <= 0) {
    fprintf(stderr, "usage: sampling_floor HZ\n");
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int opened = 0;
  for (long cpu = 0; cpu < cpus; cpu++) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = (unsigned long long)hz;
    attr.sample_type = PERF_SAMPLE_IP;
    int fd = (int)syscall(SYS_perf_event_open, &attr, -1, (int)cpu, -1, 0);
    if (fd < 0) {
      perror("perf_event_open");
      continue;
    }
    opened++;
  }
  if (opened == 0) return 1;
  while (!stop) pause();
  return 0;
}
