/* capture.c - libpcap file input. Handles every return value of
 * pcap_next_ex, remembers the byte offset of each record so a damaged file
 * is reported exactly where it breaks, and refuses link types the decoder
 * does not know instead of misreading them. */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

struct capture {
	pcap_t *pcap;
	int dlt;
	uint64_t frames;
	long offset;          /* byte offset of the record being read, -1 if unknown */
	long next_offset;     /* classic pcap: where the next record starts */
	bool classic;         /* classic pcap: offsets by arithmetic, no ftell() per packet */
	char error[PCAP_ERRBUF_SIZE + 96];
};

struct capture *capture_open_file(const char *path, const char *filter, char *err,
				  size_t errlen, bool *usage_error)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct capture *cap;
	FILE *f;

	*usage_error = false;
	cap = calloc(1, sizeof(*cap));
	if (!cap) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Opened here rather than by libpcap, whose message would repeat the
	 * path the caller already prints: "FILE: FILE: No such file ...".
	 * Standard input goes through a duplicate descriptor, because
	 * pcap_close() closes the stream: "-r - -r -" must not read a closed one. */
	if (strcmp(path, "-") == 0) {
		int fd = dup(STDIN_FILENO);

		f = fd >= 0 ? fdopen(fd, "rb") : NULL;
		if (!f && fd >= 0)
			close(fd);
	} else {
		f = fopen(path, "rb");
	}
	if (!f) {
		snprintf(err, errlen, "%s", strerror(errno));
		free(cap);
		return NULL;
	}
	cap->pcap = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!cap->pcap) {
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : "cannot open");
		fclose(f);  /* pcap_close() owns it only once the open succeeded */
		free(cap);
		return NULL;
	}
	cap->dlt = pcap_datalink(cap->pcap);
	/* Classic pcap (version 2.x) is a 24-byte file header and records of a
	 * 16-byte header plus caplen bytes: offsets are arithmetic. pcapng
	 * blocks vary, so there ftell() (a system call) runs per packet. */
	cap->classic = pcap_major_version(cap->pcap) == 2;
	cap->next_offset = 24;
	if (!decode_linktype_supported(cap->dlt)) {
		const char *name = pcap_datalink_val_to_name(cap->dlt);

		if (name)
			snprintf(err, errlen, "link type %s (%d) is not supported", name, cap->dlt);
		else
			snprintf(err, errlen, "link type %d is not supported", cap->dlt);
		capture_close(cap);
		return NULL;
	}
	if (filter) {
		struct bpf_program prog;

		if (pcap_compile(cap->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
			snprintf(err, errlen, "invalid filter expression '%s': %s", filter,
				 pcap_geterr(cap->pcap));
			*usage_error = true;
			capture_close(cap);
			return NULL;
		}
		if (pcap_setfilter(cap->pcap, &prog) != 0) {
			snprintf(err, errlen, "cannot apply filter: %s", pcap_geterr(cap->pcap));
			pcap_freecode(&prog);
			capture_close(cap);
			return NULL;
		}
		pcap_freecode(&prog);
	}
	return cap;
}

void capture_close(struct capture *cap)
{
	if (!cap)
		return;
	if (cap->pcap)
		pcap_close(cap->pcap);
	free(cap);
}

/* A record's time in nanoseconds (libpcap was asked for nanosecond
 * precision, so tv_usec holds nanoseconds). The pcap format's seconds field
 * is an unsigned 32-bit number that libpcap sign-extends: read it unsigned,
 * as the format says, so 0xffffffff is 2106 and not 1969. Larger times (only
 * pcapng can say them) saturate at 2^63 ns, the year 2262, instead of
 * wrapping round: that leaves room for the tracker's timers to be added. */
static uint64_t timestamp_ns(const struct timeval *tv)
{
	const uint64_t max_ns = (uint64_t)INT64_MAX;
	uint64_t s, sub, ns;

	if (tv->tv_sec < 0 && tv->tv_sec >= INT32_MIN)
		s = (uint32_t)tv->tv_sec;
	else if (tv->tv_sec < 0)
		return max_ns;  /* beyond 2^63 s in pcapng */
	else
		s = (uint64_t)tv->tv_sec;
	sub = tv->tv_usec < 0 ? 0 : (uint64_t)tv->tv_usec;
	if (s > max_ns / 1000000000ULL)
		return max_ns;
	ns = s * 1000000000ULL;
	return sub > max_ns - ns ? max_ns : ns + sub;
}

enum capture_status capture_next(struct capture *cap, struct packet *out,
				 enum decode_status *why)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	FILE *f = pcap_file(cap->pcap);
	int rc;

	cap->offset = cap->classic ? cap->next_offset : f ? ftell(f) : -1;
	rc = pcap_next_ex(cap->pcap, &h, &data);
	if (rc == PCAP_ERROR_BREAK)
		return CAP_EOF;
	if (rc != 1) {
		/* -1: libpcap found the record damaged (truncated, absurd length).
		 * 0 cannot happen on files. */
		if (cap->offset >= 0)
			snprintf(cap->error, sizeof(cap->error), "packet %llu (byte offset %ld): %s",
				 (unsigned long long)cap->frames + 1, cap->offset,
				 rc == PCAP_ERROR ? pcap_geterr(cap->pcap) : "unexpected read result");
		else
			snprintf(cap->error, sizeof(cap->error), "packet %llu: %s",
				 (unsigned long long)cap->frames + 1,
				 rc == PCAP_ERROR ? pcap_geterr(cap->pcap) : "unexpected read result");
		return CAP_DAMAGED;
	}
	cap->frames++;
	cap->next_offset += 16 + (long)h->caplen;
	*why = decode_frame(cap->dlt, data, h->caplen, h->len, out);
	out->ts_ns = timestamp_ns(&h->ts);
	out->number = cap->frames;
	return *why == DECODE_OK ? CAP_PACKET : CAP_SKIPPED;
}

const char *capture_error(const struct capture *cap)
{
	return cap->error;
}
