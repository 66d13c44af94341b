/* stackwatch-demo: a small service-like workload to profile.
 *
 * Three threads, each with a story a profiler should tell:
 *   - request_loop -> parse_request -> checksum_payload: CPU-bound hashing
 *   - journal_writer -> append_record -> fdatasync: blocked on disk I/O
 *   - two cache_worker threads contending on one mutex in update_cache
 * Usage: stackwatch-demo [SECONDS] (default 10). */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int running = 1;
static volatile uint64_t sink;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cache[1024];

__attribute__((noinline)) static uint64_t checksum_payload(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (int round = 0; round < 64; round++)
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

__attribute__((noinline)) static uint64_t parse_request(unsigned char *buf, size_t n, uint64_t seq) {
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(seq * 31 + i);
  return checksum_payload(buf, n);
}

static void *request_loop(void *arg) {
  (void)arg;
  unsigned char buf[4096];
  for (uint64_t seq = 0; running; seq++) sink += parse_request(buf, sizeof buf, seq);
  return NULL;
}

__attribute__((noinline)) static void append_record(int fd, const char *rec, size_t n) {
  if (write(fd, rec, n) < 0) perror("write");
  fdatasync(fd);
}

static void *journal_writer(void *arg) {
  const char *path = arg;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return NULL;
  char rec[512];
  memset(rec, 'x', sizeof rec);
  while (running) {
    append_record(fd, rec, sizeof rec);
    usleep(2000);
  }
  close(fd);
  unlink(path);
  return NULL;
}

__attribute__((noinline)) static void update_cache(uint64_t key) {
  pthread_mutex_lock(&cache_lock);
  for (int i = 0; i < 20000; i++) cache[(key + i) % 1024] += i; /* long critical section */
  pthread_mutex_unlock(&cache_lock);
}

static void *cache_worker(void *arg) {
  uint64_t key = (uintptr_t)arg;
  while (running) update_cache(key++);
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10.0;
  char path[] = "/tmp/stackwatch-demo-journal.XXXXXX";
  int tmp = mkstemp(path);
  if (tmp >= 0) close(tmp);
  pthread_t t[4];
  pthread_create(&t[0], NULL, request_loop, NULL);
  pthread_create(&t[1], NULL, journal_writer, path);
  pthread_create(&t[2], NULL, cache_worker, (void *)1);
  pthread_create(&t[3], NULL, cache_worker, (void *)2);
  struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
  running = 0;
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  return 0;
}
