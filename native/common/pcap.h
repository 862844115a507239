/*
 * pcap.h: a minimal classic-pcap writer (nanosecond timestamps, Ethernet).
 *
 * Why: tests need to look at what actually crossed the link (did the field
 * engine vary the packets? is the latency signature where it should be?).
 * The format is 24-byte global header + 16-byte record headers, written by
 * hand so there is no libpcap dependency; any pcap reader opens the file.
 */
#ifndef SERPENS_PCAP_H
#define SERPENS_PCAP_H

#include <stdint.h>
#include <stdio.h>

#define PCAP_SNAPLEN 65535u

struct pcap_writer {
	FILE *f;
	uint64_t packets;
};

/* Create/truncate path and write the global header. 0 or -1 (errno set). */
int pcap_open(struct pcap_writer *w, const char *path);
/* Append one record; caplen bytes of data, origlen = length on the wire. */
int pcap_write(struct pcap_writer *w, uint64_t ts_ns, const void *data,
	       uint32_t caplen, uint32_t origlen);
/* Flush and close; 0 or -1. Safe on a writer that was never opened. */
int pcap_close(struct pcap_writer *w);

#endif
