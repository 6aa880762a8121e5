/* capture.c - file input. libpcap opens every file (it validates the header
 * and compiles the filter); classic pcap files in the host's byte order are
 * then read by a reader of our own, on the bytes in place, and everything
 * else by pcap_next_ex. The fast reader maps a regular file into memory and
 * reads it there; what is added to the file after it was mapped (or all of
 * a file that cannot be mapped) it reads in large read() calls. Either way
 * each record's byte offset is known, so a damaged file is reported exactly
 * where it breaks, and link types the decoder does not know are refused,
 * not misread.
 *
 * TCPSTATE_PCAP_READER=libpcap makes every file go through pcap_next_ex (for
 * anyone who suspects the fast reader); TCPSTATE_PCAP_READER=fast-only
 * refuses a file the fast reader cannot take, so a test can prove it ran;
 * TCPSTATE_PCAP_READER=fast-read does too, and never maps the file, so the
 * tests can run the read() path on every file as well. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "capture.h"

/* Classic pcap: a 24-byte file header, then records of a 16-byte header
 * (seconds, sub-seconds, caplen, wire length) and caplen bytes. */
#define FILE_HEADER_LEN 24
#define RECORD_HEADER_LEN 16
#define MAGIC_MICRO 0xa1b2c3d4u
#define MAGIC_NANO 0xa1b23c4du
#define MAGIC_KUZNETZOV 0xa1b2cd34u  /* records have a 24-byte header */
/* The fast reader's buffer: four times the largest record it accepts (16 +
 * 262144 bytes), so the kernel copies the file in few calls and a record cut
 * by the buffer's end is rare and cheap to move to the front. (512 KiB and
 * 4 MiB measured the same; 1 MiB stays within a typical L2 cache.) */
#define READ_BUFFER_LEN (1u << 20)
/* A mapped file is read in windows of this many bytes (at least
 * READ_BUFFER_LEN, so any record fits): at the end of each, the pages read
 * are unmapped, so the file never counts in the peak RSS for more than about
 * a window, as the read buffer did. The window's end costs nothing a packet:
 * it is the end of the bytes fast_next() sees, which it checks anyway. */
#define MAP_WINDOW_LEN (2u << 20)
/* While a record is read, the cache lines this many bytes further on are
 * fetched, as many as the record has: the mapped file comes from memory,
 * not from a copy the kernel has just made in the cache, and every line of
 * it is asked for once, ahead. Where records are small (headers only) this
 * is the next record or so; where they are whole frames, it is the header
 * of a record a few ahead, which the reader could not find without reading
 * the ones before. On the bench's 20M-packet capture of headers only, the
 * mapped reader took 8% longer than read() without the prefetch and 12-15%
 * less with it (512 to 2048 bytes ahead measured the same); on the same
 * traffic stored whole (521 bytes a packet), 2048 bytes ahead took 3.2-3.6 s
 * where 512 took 3.6 s, only the next record's first two lines 4.8 s, and
 * read() 4.2 s. */
#define PREFETCH_AHEAD 2048

enum reader_mode {
	READER_AUTO,       /* the fast reader where it can, libpcap elsewhere */
	READER_LIBPCAP,    /* TCPSTATE_PCAP_READER=libpcap */
	READER_FAST_ONLY,  /* TCPSTATE_PCAP_READER=fast-only: refuse what it cannot read */
	READER_FAST_READ,  /* TCPSTATE_PCAP_READER=fast-read: fast-only, and read(), not mapped */
};

struct capture {
	pcap_t *pcap;
	int dlt;
	uint64_t frames;       /* records returned (those the filter kept) */
	long long offset;      /* byte offset of the record being read, -1 if unknown
				* (the fast reader sets it only when it stops there) */
	long long next_offset; /* libpcap reader, classic pcap: where the next record starts */
	bool classic;          /* classic pcap: offsets by arithmetic, no ftell() per packet */
	long long base;        /* where the file starts in the descriptor; -1: not seekable */
	unsigned minor;        /* classic pcap: version 2.minor */
	unsigned hdrsize;      /* classic pcap: record header length */
	uint32_t snapshot;     /* pcap_snapshot() */
	uint64_t records;      /* libpcap reader: records read, the filter's rejects too */
	bool maybe_cut;        /* libpcap reader: a record may have been cut to the snapshot */
	struct bpf_program prog;
	bool filtered;         /* prog holds the compiled filter */
	/* The fast reader (fast == true): the unread bytes are buf[pos, end),
	 * and buf[0] is at byte offset buf_offset of the file, so a record's
	 * offset costs nothing until it is reported. While the file is mapped
	 * (map != NULL), buf points into the mapping and end is the current
	 * window's end; otherwise buf is a malloc()ed buffer of bufsize bytes. */
	bool fast;
	bool quick;            /* fast and no filter: records go through fast_next() */
	bool quick_ether;      /* quick, and Ethernet: decode_ether_frame() without a test */
	bool eof;              /* read() returned 0 */
	uint32_t sub_ns;       /* nanoseconds in a sub-second unit: 1 (nanosecond magic) or 1000 */
	int fd;
	uint32_t max_caplen;   /* libpcap's max_snaplen_for_dlt() */
	uint32_t quick_caplen; /* the largest caplen fast_next() takes: max_caplen, snapshot */
	unsigned char *buf;
	size_t bufsize, pos, end;
	long long buf_offset;
	unsigned char *map;    /* the part of the file's mapping not yet unmapped */
	size_t map_len;        /* its length: from map to the file's end when mapped */
	size_t map_data;       /* bytes from buf to the mapping's end (or the file's, if less) */
	off_t map_size;        /* the file's size when it was mapped */
	bool shrunk;           /* the file was found shorter than that */
	char error[PCAP_ERRBUF_SIZE + 96];
};

static enum reader_mode reader_mode(void)
{
	const char *v = getenv("TCPSTATE_PCAP_READER");

	if (v && strcmp(v, "libpcap") == 0)
		return READER_LIBPCAP;
	if (v && strcmp(v, "fast-only") == 0)
		return READER_FAST_ONLY;
	if (v && strcmp(v, "fast-read") == 0)
		return READER_FAST_READ;
	return READER_AUTO;  /* unset, "auto", or anything else */
}

/* libpcap 1.10's max_snaplen_for_dlt(): a record longer than this is
 * refused as damage. 262144 for every link type the decoder supports. */
static uint32_t max_snaplen_for_dlt(int dlt)
{
	switch (dlt) {
#ifdef DLT_DBUS
	case DLT_DBUS:
		return 128 * 1024 * 1024;
#endif
#ifdef DLT_EBHSCR
	case DLT_EBHSCR:
		return 8 * 1024 * 1024;
#endif
#ifdef DLT_USBPCAP
	case DLT_USBPCAP:
		return 1024 * 1024;
#endif
	default:
		return 262144;
	}
}

static uint32_t swap32(uint32_t x)
{
	return x >> 24 | (x >> 8 & 0xff00) | (x << 8 & 0xff0000) | x << 24;
}

/* The file's magic number as the host reads it; 0 when it cannot be read. */
static uint32_t read_magic(const struct capture *cap, int fd)
{
	uint32_t magic;

	if (cap->base < 0 || pread(fd, &magic, sizeof(magic), (off_t)cap->base) != sizeof(magic))
		return 0;
	return magic;
}

/* NULL when the fast reader can take this file (and cap->sub_ns is set),
 * otherwise why not. It takes classic pcap 2.4 with the standard micro- or
 * nanosecond magic in the host's byte order, from a regular file: other
 * versions swap or reorder header fields, other magics change the record
 * header, and a pipe cannot be read again past what libpcap buffered. */
static const char *fast_unusable(struct capture *cap, int fd, struct stat *st)
{
	uint32_t magic;

	if (pcap_major_version(cap->pcap) != 2 || pcap_minor_version(cap->pcap) != 4)
		return "not a classic pcap 2.4 file";
	if (pcap_is_swapped(cap->pcap))
		return "byte order opposite to the host's";
	if (cap->base < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode))
		return "not a regular file";
	magic = read_magic(cap, fd);
	if (magic != MAGIC_MICRO && magic != MAGIC_NANO)
		return "not the standard microsecond or nanosecond magic";
	if (RECORD_HEADER_LEN + (size_t)max_snaplen_for_dlt(cap->dlt) > READ_BUFFER_LEN)
		return "records of this link type may exceed the read buffer";
	cap->sub_ns = magic == MAGIC_NANO ? 1 : 1000;
	return NULL;
}

/* ---- A mapped file that shrinks, or cannot be read ----
 * Another program may truncate the file while it is read (a rotation that
 * copies and truncates), or the disk may fail. Every window starts with the
 * file's size, so a file cut short ahead of the window is reported at the
 * first record that is not whole before its new end. Within the window, the
 * race is caught when it happens: touching a mapped page that no longer has
 * data behind it raises SIGBUS, which would end the run and lose every
 * packet read so far. While a file is mapped, a handler puts
 * zero-filled pages in place of the lost ones and notes that it did; the
 * reader looks at the note after every record it reads (one load and a
 * branch) and reports the file damaged at that record, so no record of
 * zeros is taken for data and the packets before it are analysed as usual.
 * The handler can reach the mapping's bounds only through static storage:
 * the one piece of global state here, and so one capture is mapped at a
 * time (a second one opened meanwhile is read with read()). The page the
 * file now ends in reads as zeros past the end, without a signal: a file cut
 * mid-page within the window being read shows its damage at the next page,
 * and the records read as zeros before it count as frames too short to
 * decode. */
static unsigned char *volatile guard_lo, *volatile guard_hi;
static volatile sig_atomic_t guard_tripped;
static const struct capture *guard_owner;
static uintptr_t guard_page;
static struct sigaction guard_saved;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	unsigned char *a = si->si_addr, *lo = guard_lo, *hi = guard_hi;

	(void)sig;
	(void)uctx;
	if (lo && a >= lo && a < hi) {
		unsigned char *page = (unsigned char *)((uintptr_t)a & ~(guard_page - 1));

		if (mmap(page, (size_t)(hi - page), PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
			guard_tripped = 1;
			return;
		}
	}
	/* Not the mapping's (or no pages to put there): the fault comes back
	 * on return, to whatever handled SIGBUS before, by default death. */
	sigaction(SIGBUS, &guard_saved, NULL);
}

/* Guard [lo, lo + len), cap's mapping; false when another capture's is
 * guarded already or the handler cannot be installed. */
static bool guard_on(const struct capture *cap, unsigned char *lo, size_t len)
{
	struct sigaction sa;
	long page = sysconf(_SC_PAGESIZE);

	if (guard_owner || page <= 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &guard_saved) != 0)
		return false;
	guard_page = (uintptr_t)page;
	guard_tripped = 0;
	guard_owner = cap;
	guard_hi = lo + len;
	guard_lo = lo;
	return true;
}

static void guard_off(void)
{
	guard_lo = guard_hi = NULL;
	guard_owner = NULL;
	guard_tripped = 0;
	sigaction(SIGBUS, &guard_saved, NULL);
}

/* Did cap's mapping lose a page under a record just read? */
static inline bool guard_hit(const struct capture *cap)
{
	return guard_tripped && guard_owner == cap;
}

/* The read buffer for `left` more bytes of file: all of them in one read()
 * when fewer than READ_BUFFER_LEN (many small files, fuzzing), and fill()
 * grows it if the file grows. */
static size_t read_buffer_len(off_t left)
{
	if (left >= (off_t)READ_BUFFER_LEN)
		return READ_BUFFER_LEN;
	return left < 4096 ? 4096 : (size_t)left + 1;
}

/* Map the records of a regular file of st->st_size bytes, which start at
 * byte start, and read them in place; false when they cannot be (nothing
 * to map, too large for the address space, another capture mapped). */
static bool map_start(struct capture *cap, const struct stat *st, off_t start)
{
	size_t len;
	void *m;

	if (st->st_size <= start || (uintmax_t)st->st_size > SIZE_MAX / 4)
		return false;
	len = (size_t)st->st_size;
	m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, cap->fd, 0);
	if (m == MAP_FAILED)
		return false;
	if (!guard_on(cap, m, len)) {
		munmap(m, len);
		return false;
	}
	(void)madvise(m, len, MADV_SEQUENTIAL);
	cap->map = m;
	cap->map_len = len;
	cap->map_size = st->st_size;
	cap->buf = (unsigned char *)m + start;
	cap->map_data = len - (size_t)start;
	cap->end = cap->map_data < MAP_WINDOW_LEN ? cap->map_data : MAP_WINDOW_LEN;
	return true;
}

/* Unmap what is left of cap's mapping. */
static void map_end(struct capture *cap)
{
	munmap(cap->map, cap->map_len);
	guard_off();
	cap->map = NULL;
	cap->map_len = 0;
}

/* The file's byte offset where the mapping ends (its size when mapped). */
static off_t map_file_end(const struct capture *cap)
{
	return (off_t)(cap->base + cap->buf_offset) + (off_t)cap->map_data;
}

/* fill() on a mapped file: unmap the pages read and move the window on to
 * the next MAP_WINDOW_LEN bytes, no further than the file now ends; false
 * when fewer than need are left. */
static bool map_advance(struct capture *cap, size_t need)
{
	unsigned char *cut = (unsigned char *)((uintptr_t)(cap->buf + cap->pos) & ~(guard_page - 1));
	off_t from = (off_t)(cap->base + cap->buf_offset);
	struct stat st;
	size_t left;

	if (cut > cap->map) {
		guard_lo = cut;
		munmap(cap->map, (size_t)(cut - cap->map));
		cap->map_len -= (size_t)(cut - cap->map);
		cap->map = cut;
	}
	if (fstat(cap->fd, &st) == 0 && st.st_size < map_file_end(cap)) {
		cap->shrunk = true;
		cap->map_data = st.st_size - from > (off_t)cap->pos ? (size_t)(st.st_size - from)
								     : cap->pos;
	}
	left = cap->map_data - cap->pos;
	if (left < need)
		return false;
	cap->end = cap->pos + (left < MAP_WINDOW_LEN ? left : MAP_WINDOW_LEN);
	return true;
}

/* The mapping is read to its end (but for an unread tail shorter than a
 * record): copy the tail to a read buffer, unmap, and go on with read()
 * from the mapping's end, where the file may have grown since. False with
 * errno set when that fails, and when the file shrank (cap->shrunk) or the
 * tail's page was lost (guard_hit()): then the tail is damage. */
static bool map_to_buffer(struct capture *cap)
{
	size_t left = cap->map_data - cap->pos;
	off_t resume = map_file_end(cap);
	struct stat st;
	unsigned char *b;
	size_t len;

	if (cap->shrunk)
		return false;
	len = read_buffer_len(fstat(cap->fd, &st) == 0 ? st.st_size - resume : 0);
	if (len < left)
		len = left;
	b = malloc(len);
	if (!b)
		return false;
	memcpy(b, cap->buf + cap->pos, left);
	if (guard_hit(cap) || lseek(cap->fd, resume, SEEK_SET) != resume) {
		free(b);
		return false;
	}
	map_end(cap);
	cap->buf_offset += (long long)cap->pos;
	cap->buf = b;
	cap->bufsize = len;
	cap->pos = 0;
	cap->end = left;
	return true;
}

/* Switch cap to the fast reader. fflush() on a seekable input stream
 * (POSIX) drops what libpcap's stream read ahead and sets the descriptor's
 * offset where the records start; our read()s then move that shared offset
 * exactly as far as we read (a mapped file's reader sets it to the
 * mapping's end when it gets there), so "-r -" on a regular file leaves
 * standard input at its end as libpcap would, and fclose() finds nothing buffered to
 * seek back over. A file smaller than the buffer gets a buffer its size
 * (many small files, fuzzing); fill() grows it if the file grows. */
static bool fast_start(struct capture *cap, FILE *f, int fd, const struct stat *st,
		       bool may_map)
{
	off_t start = (off_t)(cap->base + FILE_HEADER_LEN);

	if (fflush(f) != 0 || lseek(fd, start, SEEK_SET) != start)
		return false;
	cap->fd = fd;
	if (!may_map || !map_start(cap, st, start)) {
		cap->bufsize = read_buffer_len(st->st_size - start);
		cap->buf = malloc(cap->bufsize);
		if (!cap->buf)
			return false;
	}
	(void)posix_fadvise(fd, (off_t)cap->base, 0, POSIX_FADV_SEQUENTIAL);
	cap->max_caplen = max_snaplen_for_dlt(cap->dlt);
	cap->quick_caplen = cap->max_caplen < cap->snapshot ? cap->max_caplen : cap->snapshot;
	cap->buf_offset = FILE_HEADER_LEN;
	cap->fast = true;
	cap->quick = !cap->filtered;
	cap->quick_ether = cap->quick && cap->dlt == DLT_EN10MB;
	return true;
}

struct capture *capture_open_file(const char *path, const char *filter, char *err,
				  size_t errlen, bool *usage_error)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	enum reader_mode mode = reader_mode();
	const char *why_not;
	struct capture *cap;
	struct stat st;
	FILE *f;
	int fd;

	*usage_error = false;
	cap = calloc(1, sizeof(*cap));
	if (!cap) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cap->fd = -1;
	/* Opened here rather than by libpcap, whose message would repeat the
	 * path the caller already prints: "FILE: FILE: No such file ...".
	 * Standard input goes through a duplicate descriptor, because
	 * pcap_close() closes the stream: "-r - -r -" must not read a closed one. */
	if (strcmp(path, "-") == 0) {
		fd = dup(STDIN_FILENO);
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
	/* Nothing is read yet: this is where the capture starts (standard
	 * input may be a file read partly before), or -1 on a pipe. */
	fd = fileno(f);
	cap->base = lseek(fd, 0, SEEK_CUR);
	cap->pcap = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!cap->pcap) {
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : "cannot open");
		fclose(f);  /* pcap_close() owns it only once the open succeeded */
		free(cap);
		return NULL;
	}
	cap->dlt = pcap_datalink(cap->pcap);
	cap->snapshot = (uint32_t)pcap_snapshot(cap->pcap);
	/* Classic pcap (version 2.x): offsets are arithmetic. pcapng blocks
	 * vary, so there ftell() (a system call) runs per packet. */
	cap->classic = pcap_major_version(cap->pcap) == 2;
	cap->minor = (unsigned)pcap_minor_version(cap->pcap);
	cap->hdrsize = RECORD_HEADER_LEN;
	if (cap->classic) {
		uint32_t m = read_magic(cap, fd);

		if (m == MAGIC_KUZNETZOV || m == swap32(MAGIC_KUZNETZOV))
			cap->hdrsize = 24;
	}
	cap->next_offset = FILE_HEADER_LEN;
	if (!decode_linktype_supported(cap->dlt)) {
		const char *name = pcap_datalink_val_to_name(cap->dlt);

		if (name)
			snprintf(err, errlen, "link type %s (%d) is not supported", name, cap->dlt);
		else
			snprintf(err, errlen, "link type %d is not supported", cap->dlt);
		capture_close(cap);
		return NULL;
	}
	/* Compiled once and applied by capture_next() to every record, on
	 * both readers, rather than installed in libpcap: libpcap would skip
	 * the records it rejects unseen, and their lengths are needed for the
	 * offsets of the records after them. */
	if (filter) {
		if (pcap_compile(cap->pcap, &cap->prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
			snprintf(err, errlen, "invalid filter expression '%s': %s", filter,
				 pcap_geterr(cap->pcap));
			*usage_error = true;
			capture_close(cap);
			return NULL;
		}
		cap->filtered = true;
	}
	if (mode == READER_LIBPCAP)
		return cap;
	why_not = fast_unusable(cap, fd, &st);
	if (!why_not && !fast_start(cap, f, fd, &st, mode != READER_FAST_READ))
		why_not = strerror(errno);
	if (why_not && (mode == READER_FAST_ONLY || mode == READER_FAST_READ)) {
		snprintf(err, errlen, "TCPSTATE_PCAP_READER=%s: the fast reader cannot "
			 "read this file (%s)", mode == READER_FAST_ONLY ? "fast-only" : "fast-read",
			 why_not);
		capture_close(cap);
		return NULL;
	}
	return cap;
}

void capture_close(struct capture *cap)
{
	if (!cap)
		return;
	if (cap->filtered)
		pcap_freecode(&cap->prog);
	if (cap->pcap)
		pcap_close(cap->pcap);
	if (cap->map)
		map_end(cap);
	else
		free(cap->buf);
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

/* Record the damage at cap->offset ("packet N (byte offset O): reason"). */
static enum capture_status damaged(struct capture *cap, const char *reason)
{
	if (cap->offset >= 0)
		snprintf(cap->error, sizeof(cap->error), "packet %llu (byte offset %lld): %s",
			 (unsigned long long)cap->frames + 1, cap->offset, reason);
	else
		snprintf(cap->error, sizeof(cap->error), "packet %llu: %s",
			 (unsigned long long)cap->frames + 1, reason);
	return CAP_DAMAGED;
}

/* Hand a record the filter kept to the decoder. */
static enum capture_status deliver(struct capture *cap, const struct pcap_pkthdr *h,
				   const u_char *data, struct packet *out,
				   enum decode_status *why)
{
	cap->frames++;
	*why = decode_frame(cap->dlt, data, h->caplen, h->len, out);
	out->ts_ns = timestamp_ns(&h->ts);
	out->number = cap->frames;
	return *why == DECODE_OK ? CAP_PACKET : CAP_SKIPPED;
}

/* Fast reader: make at least `need` (<= READ_BUFFER_LEN) unread bytes
 * available, moving the unread tail to the front and filling the rest of the
 * buffer. Returns the unread bytes, fewer than need only at end of file, or
 * (size_t)-1 with errno set when read() or growing the buffer fails. */
static size_t fill(struct capture *cap, size_t need)
{
	if (cap->end - cap->pos >= need)
		return cap->end - cap->pos;
	if (cap->map) {
		if (map_advance(cap, need))
			return cap->end - cap->pos;
		if (!map_to_buffer(cap))
			return (size_t)-1;
	}
	memmove(cap->buf, cap->buf + cap->pos, cap->end - cap->pos);
	cap->buf_offset += (long long)cap->pos;
	cap->end -= cap->pos;
	cap->pos = 0;
	if (need > cap->bufsize && !cap->eof) {  /* the file grew since it was opened */
		unsigned char *bigger = realloc(cap->buf, READ_BUFFER_LEN);

		if (!bigger)
			return (size_t)-1;
		cap->buf = bigger;
		cap->bufsize = READ_BUFFER_LEN;
	}
	while (cap->end < need && !cap->eof) {
		ssize_t n = read(cap->fd, cap->buf + cap->end, cap->bufsize - cap->end);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (size_t)-1;
		if (n == 0)
			cap->eof = true;
		cap->end += (size_t)n;
	}
	return cap->end;
}

/* The record at rec (in buf) had a lost page under it: the file is damaged
 * there, and the record was not delivered. */
__attribute__((noinline))
static enum capture_status lost_page(struct capture *cap, const unsigned char *rec)
{
	char reason[160];
	struct stat st;

	cap->offset = cap->buf_offset + (long long)(rec - cap->buf);
	if (fstat(cap->fd, &st) == 0 && st.st_size < cap->map_size)
		snprintf(reason, sizeof(reason), "the file shrank to %lld bytes while it was "
			 "read", (long long)st.st_size);
	else if (cap->shrunk)
		snprintf(reason, sizeof(reason), "the file shrank while it was read");
	else
		snprintf(reason, sizeof(reason), "the mapped file could not be read here "
			 "(input/output error)");
	return damaged(cap, reason);
}

/* A record header field (host byte order: the fast reader takes only
 * files in it), i = 0 seconds, 1 sub-seconds, 2 caplen, 3 wire length. */
static uint32_t record_field(const unsigned char *rec, int i)
{
	uint32_t v;

	memcpy(&v, rec + 4 * i, sizeof(v));
	return v;
}

/* Fast reader, when the record at buf[pos] is not in the buffer whole or
 * its caplen is absurd: libpcap 1.10's pcap_next_packet() checks, in the
 * same order with the same messages. CAP_PACKET when the record is now in
 * the buffer whole; otherwise CAP_EOF or CAP_DAMAGED. Out of line, so the
 * per-record path keeps no error buffer. */
__attribute__((noinline))
static enum capture_status fast_fill_record(struct capture *cap)
{
	char reason[PCAP_ERRBUF_SIZE];
	size_t have = cap->end - cap->pos, got;
	uint32_t caplen;

	cap->offset = cap->buf_offset + (long long)cap->pos;
	if (have < RECORD_HEADER_LEN) {
		have = fill(cap, RECORD_HEADER_LEN);
		if (have == (size_t)-1)
			goto read_error;
		if (have == 0)
			return CAP_EOF;
		if (have < RECORD_HEADER_LEN) {
			snprintf(reason, sizeof(reason), "truncated dump file; tried to read "
				 "%d header bytes, only got %zu", RECORD_HEADER_LEN, have);
			return damaged(cap, reason);
		}
	}
	caplen = record_field(cap->buf + cap->pos, 2);
	if (caplen > cap->max_caplen) {
		if (caplen > cap->snapshot)
			snprintf(reason, sizeof(reason), "invalid packet capture length %u, "
				 "bigger than snaplen of %d", caplen, (int)cap->snapshot);
		else
			snprintf(reason, sizeof(reason), "invalid packet capture length %u, "
				 "bigger than maximum of %u", caplen, cap->max_caplen);
		return damaged(cap, reason);
	}
	if (have - RECORD_HEADER_LEN < caplen) {
		have = fill(cap, RECORD_HEADER_LEN + (size_t)caplen);
		if (have == (size_t)-1)
			goto read_error;
		got = have - RECORD_HEADER_LEN;
		if (got < caplen) {
			/* libpcap reads at most the snapshot length first,
			 * and names it when even that falls short. */
			uint32_t tried = caplen > cap->snapshot && got < cap->snapshot ?
				cap->snapshot : caplen;

			snprintf(reason, sizeof(reason), "truncated dump file; tried to read "
				 "%u captured bytes, only got %zu", tried, got);
			return damaged(cap, reason);
		}
	}
	return CAP_PACKET;
read_error:
	if (guard_hit(cap) || cap->shrunk)
		return lost_page(cap, cap->buf + cap->pos);
	snprintf(reason, sizeof(reason), "error reading dump file: %s", strerror(errno));
	return damaged(cap, reason);
}

/* The filter on a fast reader record, given the pcap_pkthdr libpcap would
 * have made (times as in timestamp_ns()'s input: both fields sign-extended,
 * microseconds scaled to nanoseconds on the signed value). */
static bool fast_filter(const struct capture *cap, const unsigned char *rec, uint32_t caplen,
			const unsigned char *data)
{
	struct pcap_pkthdr h;

	h.ts.tv_sec = (int32_t)record_field(rec, 0);
	h.ts.tv_usec = (int32_t)record_field(rec, 1);
	if (cap->sub_ns != 1)
		h.ts.tv_usec = h.ts.tv_usec * 1000;
	h.caplen = caplen;
	h.len = record_field(rec, 3);
	return pcap_offline_filter(&cap->prog, &h, data) != 0;
}

/* Fast reader: hand the record at rec, whole in the buffer and already
 * skipped, to the decoder (ether: the link type is Ethernet). ts_ns and
 * number go in first (the decoder leaves them alone), so nothing but why is
 * needed after the call. */
static inline enum capture_status fast_deliver(struct capture *cap, const unsigned char *rec,
					       uint32_t caplen, struct packet *out,
					       enum decode_status *why, bool ether)
{
	/* timestamp_ns() of libpcap's struct timeval, short: the seconds are
	 * unsigned 32 bits and the sub-seconds at most 2^31 - 1 units
	 * (negative ones count as 0), so nothing can saturate. */
	uint32_t sec = record_field(rec, 0), sub = record_field(rec, 1);
	uint64_t sub_ns = (int32_t)sub < 0 ? 0 : (uint64_t)sub * cap->sub_ns;
	enum decode_status st;

	out->ts_ns = (uint64_t)sec * 1000000000u + sub_ns;
	out->number = ++cap->frames;
	if (ether)
		st = decode_ether_frame(rec + RECORD_HEADER_LEN, caplen, record_field(rec, 3), out);
	else
		st = decode_frame(cap->dlt, rec + RECORD_HEADER_LEN, caplen, record_field(rec, 3), out);
	*why = st;
	if (guard_hit(cap)) {
		cap->frames--;
		return lost_page(cap, rec);
	}
	return st == DECODE_OK ? CAP_PACKET : CAP_SKIPPED;
}

/* Fast reader: libpcap 1.10's pcap_next_packet() for a classic pcap file in
 * the host's byte order, the same checks in the same order with the same
 * messages, but on the bytes in place; and the filter. */
__attribute__((noinline))
static enum capture_status fast_next_slow(struct capture *cap, struct packet *out,
					  enum decode_status *why)
{
	for (;;) {
		const unsigned char *rec;
		enum capture_status st = fast_fill_record(cap);
		uint32_t caplen;

		if (st != CAP_PACKET)
			return st;
		rec = cap->buf + cap->pos;
		caplen = record_field(rec, 2);
		cap->pos += RECORD_HEADER_LEN + (size_t)caplen;
		/* Longer than the snapshot length: libpcap keeps only that much. */
		if (caplen > cap->snapshot)
			caplen = cap->snapshot;
		if (cap->filtered && !fast_filter(cap, rec, caplen, rec + RECORD_HEADER_LEN)) {
			if (guard_hit(cap))
				return lost_page(cap, rec);
			continue;
		}
		return fast_deliver(cap, rec, caplen, out, why, cap->dlt == DLT_EN10MB);
	}
}

/* Fast reader, the common case inline (cap->quick: no filter): a record in
 * the buffer whole, with a caplen neither absurd nor over the snapshot
 * length. Everything else goes the slow way. */
static inline enum capture_status fast_next(struct capture *cap, struct packet *out,
					    enum decode_status *why, bool ether)
{
	const unsigned char *rec = cap->buf + cap->pos;
	size_t have = cap->end - cap->pos;
	uint32_t caplen;

	if (have < RECORD_HEADER_LEN || (caplen = record_field(rec, 2)) > cap->quick_caplen ||
	    have - RECORD_HEADER_LEN < caplen)
		return fast_next_slow(cap, out, why);
	cap->pos += RECORD_HEADER_LEN + (size_t)caplen;
	for (uintptr_t a = (uintptr_t)rec + PREFETCH_AHEAD, e = a + RECORD_HEADER_LEN + caplen;
	     a < e; a += 64)
		__builtin_prefetch((const void *)a);
	return fast_deliver(cap, rec, caplen, out, why, ether);
}

/* libpcap reader, classic pcap: the byte offset of the record after the
 * cap->records read so far, found by reading their headers again; -1 when
 * they cannot be read. Needed only once a record had exactly the snapshot
 * length: libpcap cuts a longer record down to that and drops the rest
 * silently, so the arithmetic offset may fall short. Runs at most once, when
 * the file turns out damaged, so the records cost nothing meanwhile. */
static long long rewalk_offset(const struct capture *cap)
{
	unsigned char win[64 * 1024];  /* a window of the file, from wstart */
	long long off = FILE_HEADER_LEN, wstart = 0;
	size_t wlen = 0;
	int fd = fileno(pcap_file(cap->pcap));

	for (uint64_t n = 0; n < cap->records; n++) {
		uint32_t rh[4], c, l;

		if (off - wstart < 0 || (unsigned long long)(off - wstart) + sizeof(rh) > wlen) {
			ssize_t got = pread(fd, win, sizeof(win), (off_t)(cap->base + off));

			if (got < (ssize_t)sizeof(rh))
				return -1;
			wstart = off;
			wlen = (size_t)got;
		}
		memcpy(rh, win + (off - wstart), sizeof(rh));
		c = rh[2];
		l = rh[3];
		if (pcap_is_swapped(cap->pcap)) {
			c = swap32(c);
			l = swap32(l);
		}
		/* Before version 2.3 the two lengths were the other way round,
		 * and some 2.3 files were written either way (libpcap's rule). */
		if (cap->minor < 3 || (cap->minor == 3 && c > l))
			c = l;
		off += cap->hdrsize + (long long)c;
	}
	return off;
}

/* Out of line: inlined, its stack frame would be set up for every packet
 * of the fast reader too. */
__attribute__((noinline))
static enum capture_status libpcap_next(struct capture *cap, struct packet *out,
					enum decode_status *why)
{
	for (;;) {
		struct pcap_pkthdr *h;
		const u_char *data;
		int rc;

		if (cap->classic)
			cap->offset = cap->next_offset;
		else
			cap->offset = pcap_file(cap->pcap) ? (long long)ftello(pcap_file(cap->pcap)) : -1;
		rc = pcap_next_ex(cap->pcap, &h, &data);
		if (rc == PCAP_ERROR_BREAK)
			return CAP_EOF;
		if (rc != 1) {
			/* -1: libpcap found the record damaged (truncated,
			 * absurd length). 0 cannot happen on files. */
			if (cap->classic && cap->maybe_cut && cap->base >= 0 && pcap_file(cap->pcap))
				cap->offset = rewalk_offset(cap);
			return damaged(cap, rc == PCAP_ERROR ? pcap_geterr(cap->pcap)
							    : "unexpected read result");
		}
		cap->records++;
		if (cap->classic) {
			cap->next_offset += cap->hdrsize + (long long)h->caplen;
			cap->maybe_cut |= h->caplen == cap->snapshot;
		}
		if (cap->filtered && !pcap_offline_filter(&cap->prog, h, data))
			continue;
		return deliver(cap, h, data, out, why);
	}
}

enum capture_status capture_next(struct capture *cap, struct packet *out,
				 enum decode_status *why)
{
	if (cap->quick_ether)
		return fast_next(cap, out, why, true);
	if (cap->quick)
		return fast_next(cap, out, why, false);
	return cap->fast ? fast_next_slow(cap, out, why) : libpcap_next(cap, out, why);
}

const char *capture_error(const struct capture *cap)
{
	return cap->error;
}
