/* A fixed CPU-bound workload: 2 threads, a fixed number of iterations each
 * (not a fixed time), so a slower run under a profiler takes longer. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t iterations = 400000000ULL;

__attribute__((noinline)) static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

static void *worker(void *arg) {
  uint64_t h = (uintptr_t)arg;
  for (uint64_t i = 0; i < iterations; i++) h = mix(h + i);
  return (void *)(uintptr_t)h;
}

int main(int argc, char **argv) {
  if (argc > 1) iterations = strtoull(argv[1], NULL, 10);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  return 0;
}
