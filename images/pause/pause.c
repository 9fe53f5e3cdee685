/*
 * minik pause: the process that holds a pod's namespaces open.
 *
 * Sleeps forever in pause(); exits 0 on SIGTERM/SIGINT (so `docker stop`
 * returns at once instead of waiting for SIGKILL: as PID 1 a process gets no
 * default signal actions); reaps any zombie re-parented to it (SIGCHLD ->
 * waitpid loop), as PID 1 of a shared PID namespace must.
 *
 * Build: gcc -static -Os -s -o pause pause.c
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "1.0"

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_chld(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("minik pause %s\n", VERSION);
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "minik pause: warning: not running as PID 1\n");

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_term;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		perror("minik pause: sigaction");
		return 1;
	}
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		perror("minik pause: sigaction");
		return 2;
	}

	for (;;)
		pause();
	return 42; /* not reached */
}
