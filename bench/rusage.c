/* rusage.c - bench-rusage: run one command and report what it cost.
 * Wall time comes from CLOCK_MONOTONIC around fork/exec/wait4, CPU time and
 * peak RSS from the child's rusage, so bench/run needs neither GNU time nor
 * its 10 ms resolution. Output is one line of key=value pairs in FILE. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status;

	if (argc < 4 || strcmp(argv[1], "-o") != 0) {
		fprintf(stderr, "usage: bench-rusage -o FILE COMMAND [ARGS...]\n");
		return 2;
	}
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		fprintf(stderr, "bench-rusage: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench-rusage: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		fclose(out);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "bench-rusage: %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "bench-rusage: wait4: %s\n", strerror(errno));
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(out, "rc=%d wall=%.6f user=%.6f sys=%.6f maxrss_kb=%ld\n", rc, wall,
		tv_s(ru.ru_utime), tv_s(ru.ru_stime), ru.ru_maxrss);
	if (fclose(out) != 0)
		return 2;
	return rc;
}
