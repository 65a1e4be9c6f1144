/*
 * NAME
 *	submit_bench - run many `sendmail -t -i` processes and time them
 * SYNOPSIS
 *	submit_bench SENDMAIL MESSAGE-FILE CONCURRENCY SECONDS MAX-PER-WORKER
 * DESCRIPTION
 *	Starts CONCURRENCY worker processes. Each one runs SENDMAIL -t -i
 *	with MESSAGE-FILE on standard input, one process per message and one
 *	after the other, until SECONDS have passed or it has sent
 *	MAX-PER-WORKER messages. The environment (MXLANE_CONFIG) is passed
 *	on unchanged. Every submission's wall-clock latency, from spawn to
 *	exit, is recorded.
 *
 *	Prints one line of whitespace-separated fields:
 *
 *	concurrency ok errors seconds per_second p50_ms p90_ms p99_ms max_ms
 *
 *	seconds is the wall time from the first spawn to the last exit.
 * DIAGNOSTICS
 *	A submission that does not exit 0 counts as an error (and is not a
 *	latency sample); the first one's status goes to stderr. Exit status
 *	0, or 1 on a usage or system error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct worker_result {
	long ok;
	long errors;
	int first_status;
	double end;		/* seconds since the common start */
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
percentile(const double *sorted, long n, double p)
{
	long i;

	if (n == 0)
		return 0;
	i = (long)(p * (n - 1) + 0.5);
	return sorted[i];
}

/* One submission; returns its wait status, or -1 when spawning failed. */
static int
submit_one(const char *sendmail, const char *message)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {(char *)sendmail, "-t", "-i", NULL};
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, message, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, sendmail, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

static void
worker(const char *sendmail, const char *message, double start,
    double seconds, long max, double *lat, struct worker_result *res)
{
	res->first_status = 0;
	for (long i = 0; i < max && now() - start < seconds; i++) {
		double t = now();
		int status = submit_one(sendmail, message);

		if (status == 0) {
			lat[res->ok++] = now() - t;
		} else {
			if (res->errors++ == 0)
				res->first_status = status;
		}
	}
	res->end = now() - start;
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: submit_bench SENDMAIL MESSAGE-FILE "
		    "CONCURRENCY SECONDS MAX-PER-WORKER\n");
		return 1;
	}
	const char *sendmail = argv[1], *message = argv[2];
	int conc = atoi(argv[3]);
	double seconds = atof(argv[4]);
	long max = atol(argv[5]);

	if (conc < 1 || conc > 1024 || seconds <= 0 || max < 1 ||
	    max > 10000000 / conc) {
		fprintf(stderr, "submit_bench: bad arguments\n");
		return 1;
	}
	if (access(sendmail, X_OK) != 0 || access(message, R_OK) != 0) {
		fprintf(stderr, "submit_bench: %s or %s: %s\n", sendmail,
		    message, strerror(errno));
		return 1;
	}
	/* Shared with the workers: results, then max latencies each. */
	size_t size = conc * sizeof(struct worker_result) +
	    (size_t)conc * max * sizeof(double);
	void *shm = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("submit_bench: mmap");
		return 1;
	}
	struct worker_result *res = shm;
	double *lat = (double *)(res + conc);
	double start = now();

	for (int w = 0; w < conc; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("submit_bench: fork");
			return 1;
		}
		if (pid == 0) {
			worker(sendmail, message, start, seconds, max,
			    lat + (size_t)w * max, &res[w]);
			_exit(0);
		}
	}
	for (int w = 0; w < conc; w++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "submit_bench: a worker failed\n");
			return 1;
		}
	}

	long ok = 0, errors = 0;
	double end = 0;
	int first_status = 0;
	for (int w = 0; w < conc; w++) {
		ok += res[w].ok;
		errors += res[w].errors;
		if (res[w].end > end)
			end = res[w].end;
		if (!first_status)
			first_status = res[w].first_status;
	}
	if (errors)
		fprintf(stderr, "submit_bench: %ld submissions failed, first "
		    "with wait status 0x%x\n", errors, first_status);
	double *all = malloc((ok ? ok : 1) * sizeof(double));
	if (all == NULL) {
		perror("submit_bench: malloc");
		return 1;
	}
	long n = 0;
	for (int w = 0; w < conc; w++)
		for (long i = 0; i < res[w].ok; i++)
			all[n++] = lat[(size_t)w * max + i];
	qsort(all, n, sizeof(double), cmp_double);
	printf("%d %ld %ld %.3f %.1f %.2f %.2f %.2f %.2f\n", conc, ok, errors,
	    end, end > 0 ? ok / end : 0.0,
	    percentile(all, n, 0.50) * 1e3, percentile(all, n, 0.90) * 1e3,
	    percentile(all, n, 0.99) * 1e3, n ? all[n - 1] * 1e3 : 0.0);
	free(all);
	return 0;
}
