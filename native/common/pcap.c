/*
 * pcap.c: classic pcap writer (see pcap.h).
 */
#include <errno.h>
#include <string.h>

#include "pcap.h"

#define PCAP_MAGIC_NS 0xa1b23c4du    /* nanosecond-resolution variant */
#define PCAP_LINKTYPE_ETHERNET 1u

struct pcap_global_hdr {
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	int32_t thiszone;
	uint32_t sigfigs;
	uint32_t snaplen;
	uint32_t network;
};

struct pcap_rec_hdr {
	uint32_t ts_sec;
	uint32_t ts_nsec;
	uint32_t incl_len;
	uint32_t orig_len;
};

int pcap_open(struct pcap_writer *w, const char *path)
{
	struct pcap_global_hdr gh = {
		.magic = PCAP_MAGIC_NS,
		.version_major = 2,
		.version_minor = 4,
		.thiszone = 0,
		.sigfigs = 0,
		.snaplen = PCAP_SNAPLEN,
		.network = PCAP_LINKTYPE_ETHERNET,
	};

	w->packets = 0;
	w->f = fopen(path, "wb");
	if (w->f == NULL)
		return -1;
	if (fwrite(&gh, sizeof(gh), 1, w->f) != 1) {
		fclose(w->f);
		w->f = NULL;
		return -1;
	}
	return 0;
}

int pcap_write(struct pcap_writer *w, uint64_t ts_ns, const void *data,
	       uint32_t caplen, uint32_t origlen)
{
	struct pcap_rec_hdr rh;

	if (w->f == NULL) {
		errno = EBADF;
		return -1;
	}
	if (caplen > PCAP_SNAPLEN)
		caplen = PCAP_SNAPLEN;
	rh.ts_sec = (uint32_t)(ts_ns / 1000000000ull);
	rh.ts_nsec = (uint32_t)(ts_ns % 1000000000ull);
	rh.incl_len = caplen;
	rh.orig_len = origlen;
	if (fwrite(&rh, sizeof(rh), 1, w->f) != 1)
		return -1;
	if (caplen && fwrite(data, caplen, 1, w->f) != 1)
		return -1;
	w->packets++;
	return 0;
}

int pcap_close(struct pcap_writer *w)
{
	int ret;

	if (w->f == NULL)
		return 0;
	ret = fclose(w->f);
	w->f = NULL;
	return ret == 0 ? 0 : -1;
}
