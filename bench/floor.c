/* floor.c - pcap-floor: the least work any libpcap-based reader must do.
 * It opens a capture with nanosecond timestamps, walks it with pcap_next_ex and
 * counts packets and bytes. Its packets/s is the speed floor the benchmark
 * compares tcpstate and its peers against. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1      /* pcap.h uses the BSD u_int/u_char types */
#endif
#include <inttypes.h>
#include <stdio.h>

#include <pcap/pcap.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t packets = 0, caplen_bytes = 0, wire_bytes = 0, sum = 0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: pcap-floor FILE\n");
		return 2;
	}
	errbuf[0] = '\0';
	pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1],
		PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		fprintf(stderr, "pcap-floor: %s: %s\n", argv[1], errbuf);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		packets++;
		caplen_bytes += h->caplen;
		wire_bytes += h->len;
		if (h->caplen)
			sum += data[0];   /* touch the packet, as any reader must */
	}
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "pcap-floor: %s: packet %" PRIu64 ": %s\n", argv[1], packets + 1,
			pcap_geterr(p));
		pcap_close(p);
		return 1;
	}
	/* rc == PCAP_ERROR_BREAK: end of file. 0 (timeout) cannot happen offline. */
	printf("packets %" PRIu64 " caplen_bytes %" PRIu64 " wire_bytes %" PRIu64
	       " linktype %d check %" PRIu64 "\n",
	       packets, caplen_bytes, wire_bytes, pcap_datalink(p), sum & 0xff);
	pcap_close(p);
	return 0;
}
