/* The pod sandbox's init process: holds the pod's namespaces open, reaps
 * zombies (it is PID 1 when the pod shares its PID namespace) and exits on
 * SIGINT/SIGTERM. Registries are out of reach here, so the kubelet's sandbox
 * image is built from this file instead of pulled (hack/images/build.sh).
 * Same behaviour as Kubernetes' own build/pause/linux/pause.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { _exit(128 + sig); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  if (getpid() != 1) fprintf(stderr, "pause: not PID 1, zombies are someone else's\n");
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0)
    return 1;
  for (;;) pause();
}
