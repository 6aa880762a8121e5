/* capture.c - libpcap file input. Handles every return value of
 * pcap_next_ex, remembers the byte offset of each record so a damaged file
 * is reported exactly where it breaks, and refuses link types the decoder
 * does not know instead of misreading them. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"

struct capture {
	pcap_t *pcap;
	int dlt;
	uint64_t frames;
	long offset;          /* byte offset of the record being read, -1 if unknown */
	char error[PCAP_ERRBUF_SIZE + 96];
};

struct capture *capture_open_file(const char *path, const char *filter, char *err,
				  size_t errlen, bool *usage_error)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct capture *cap;

	*usage_error = false;
	cap = calloc(1, sizeof(*cap));
	if (!cap) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cap->pcap = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO,
							     errbuf);
	if (!cap->pcap) {
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : "cannot open");
		free(cap);
		return NULL;
	}
	cap->dlt = pcap_datalink(cap->pcap);
	if (!decode_linktype_supported(cap->dlt)) {
		const char *name = pcap_datalink_val_to_name(cap->dlt);

		snprintf(err, errlen, "link type %s (%d) is not supported", name ? name : "?",
			 cap->dlt);
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

enum capture_status capture_next(struct capture *cap, struct packet *out,
				 enum decode_status *why)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	FILE *f = pcap_file(cap->pcap);
	int rc;

	cap->offset = f ? ftell(f) : -1;
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
	*why = decode_frame(cap->dlt, data, h->caplen, h->len, out);
	out->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000ULL + (uint64_t)h->ts.tv_usec;
	out->number = cap->frames;
	return *why == DECODE_OK ? CAP_PACKET : CAP_SKIPPED;
}

const char *capture_error(const struct capture *cap)
{
	return cap->error;
}

uint64_t capture_frames(const struct capture *cap)
{
	return cap->frames;
}

const char *capture_linktype(const struct capture *cap)
{
	const char *n = pcap_datalink_val_to_name(cap->dlt);

	return n ? n : "?";
}
