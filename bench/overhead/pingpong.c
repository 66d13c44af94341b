/* A context-switch-heavy workload: two threads bounce a byte through two
 * pipes a fixed number of times; every round trip is two sleeps and two
 * wake-ups. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static int ab[2], ba[2];
static long rounds = 200000;

static void *echo(void *arg) {
  (void)arg;
  char c;
  for (long i = 0; i < rounds; i++) {
    if (read(ab[0], &c, 1) != 1) break;
    if (write(ba[1], &c, 1) != 1) break;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) rounds = atol(argv[1]);
  if (pipe(ab) || pipe(ba)) return 1;
  pthread_t t;
  pthread_create(&t, NULL, echo, NULL);
  char c = 'x';
  for (long i = 0; i < rounds; i++) {
    if (write(ab[1], &c, 1) != 1) break;
    if (read(ba[0], &c, 1) != 1) break;
  }
  pthread_join(t, NULL);
  return 0;
}
