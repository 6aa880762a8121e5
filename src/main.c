/* main.c - tcpstate's entry point: parse the command line, then hand over
 * to the run. Everything testable lives in the core library. */
#include <pcap/pcap.h>
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
		printf("tcpstate %s (%s)\n", TCPSTATE_VERSION, pcap_lib_version());
		options_free(&o);
		return 0;
	}
	if (o.action == ACT_LIST_IFACES) {
		options_free(&o);
		return list_interfaces();
	}
	/* A closed pipe (tcpstate ... | head) ends the output, not the process. */
	signal(SIGPIPE, SIG_IGN);
	rc = o.iface ? run_live(&o, STDOUT_FILENO) : run_files(&o, STDOUT_FILENO);
	options_free(&o);
	return rc;
}
