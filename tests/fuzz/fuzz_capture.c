/* fuzz_capture.c - libFuzzer harness for the capture-file reader: the input
 * is a whole pcap or pcapng file, written to a memfd and run through the same
 * file pipeline as `tcpstate -r FILE` (run_files), report included. Under
 * libFuzzer's leak detection this also proves a damaged file leaks nothing.
 * The last input byte picks the command line (format, --max-connections...). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "options.h"
#include "run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = { "text", "json", "zeek", "text" };
	static int devnull = -1;
	uint8_t last = size ? data[size - 1] : 0;
	char path[64], fmt_arg[16];
	char *argv[16];
	int argc = 0;
	char err[256];
	struct options o;
	int fd;

	if (devnull < 0)
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fd = memfd_create("fuzz_capture", MFD_CLOEXEC);
	if (fd < 0)
		abort(); /* the harness itself is broken: say so loudly */
	if (!write_all(fd, data, size)) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(fmt_arg, sizeof(fmt_arg), "%s", formats[last & 3]);
	/* The last byte picks the command line: format, --timeline, a small
	 * --max-connections, -c and --at, the options that change the run. */
	argv[argc++] = "tcpstate";
	argv[argc++] = "-r";
	argv[argc++] = path;
	argv[argc++] = "--format";
	argv[argc++] = fmt_arg;
	argv[argc++] = "--limit";
	argv[argc++] = "3";
	if (last & 4)
		argv[argc++] = "--timeline";
	if (last & 8) {
		argv[argc++] = "--max-connections";
		argv[argc++] = "2";
	}
	if (last & 16) {
		argv[argc++] = "-c";
		argv[argc++] = "5";
	}
	if (last & 32) {
		argv[argc++] = "--at";
		argv[argc++] = "+0.002";
	}
	argv[argc] = NULL;
	if (options_parse(argc, argv, &o, err, sizeof(err)) == 0)
		run_files(&o, devnull);
	options_free(&o);
	close(fd);
	return 0;
}
