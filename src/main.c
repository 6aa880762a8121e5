/* main.c - tcpstate's entry point: parse the command line, then hand over
 * to the run. Everything testable lives in the core library. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "options.h"
#include "run.h"

int main(int argc, char **argv)
{
	struct options o;
	char err[512] = "";
	int rc = options_parse(argc, argv, &o, err, sizeof(err));

	if (rc != 0) {
		fprintf(stderr, "tcpstate: %s\nTry 'tcpstate --help' for more information.\n", err);
		options_free(&o);
		return 2;
	}
	if (o.action == ACT_HELP) {
		fputs(options_usage, stdout);
		options_free(&o);
		return 0;
	}
	if (o.action == ACT_VERSION) {
		printf("tcpstate %s\n", TCPSTATE_VERSION);
		options_free(&o);
		return 0;
	}
	/* A closed pipe (tcpstate ... | head) ends the output, not the process. */
	signal(SIGPIPE, SIG_IGN);
	if (o.iface) {
		fprintf(stderr, "tcpstate: live capture (-i) is not available in this build yet\n");
		options_free(&o);
		return 2;
	}
	rc = run_files(&o, STDOUT_FILENO);
	options_free(&o);
	return rc;
}
