/*
 * The pod sandbox of the local cluster (containerd's sandbox_image): the first process of every pod.
 * It only has to exist: the pod's namespaces live as long as it does. Written here because no
 * registry serves a pause image to this machine.
 *   - sleeps in pause() and never wakes up for anything but a signal;
 *   - reaps every child it inherits on SIGCHLD (with a shared PID namespace it is PID 1 of the pod,
 *     and orphans are re-parented to it), so no zombie piles up;
 *   - exits 0 on SIGINT or SIGTERM, which is how the runtime stops a sandbox.
 * Build: gcc -static -Os -o pause pause.c   (`pause -v` prints its version)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "lakehouse-pause 1"

static void on_stop(int signo) {
  (void)signo;
  _exit(0);
}

/* Several children may end between two deliveries of SIGCHLD: collect all that are done. */
static void on_child(int signo) {
  int saved_errno = errno;
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved_errno;
}

static void handle(int signo, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, NULL) != 0) {
    perror("sigaction");
    _exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts(PAUSE_VERSION);
    return 0;
  }
  if (getpid() != 1) {
    fputs("pause: not PID 1 of its namespace; orphans of the pod will not be reaped here\n", stderr);
  }
  handle(SIGINT, on_stop, 0);
  handle(SIGTERM, on_stop, 0);
  handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART);
  for (;;) {
    pause();
  }
}
