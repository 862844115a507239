/*
 * scale_control.h: the control thread's side of the scaling axis (scale_control.c): moves of router
 * buckets between instances through serpensd's --scaling protocol, and scale-out/in built on them.
 * Control thread only (control_int.h's rules: one request at a time, hidden from NFs).
 */
#ifndef SERPENS_SCALE_CONTROL_H
#define SERPENS_SCALE_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#pragma GCC visibility push(hidden)

/* serpensd start-up: create what the protocol needs (rings, the OpenNF controller); 0 or -1 (said why). */
int sc_control_setup(void);
void sc_control_stop(void);
/* True if flow state lives in instances (every protocol but `shared`). */
bool sc_private_state(void);
/* Move the flows of the buckets in `mask` of SFC `sfc` from instance `from` to `to`; the move's record
 * (scale_control.c) is appended to `records` (if not NULL). `departing`: `from` stops after the move (a
 * lazy protocol must not leave state behind in it). `pinned` (--pin-flows): only the route of new flows
 * moves; every existing flow stays on `from` with its state, and nothing else happens. 0, or -1 (err). */
int sc_move(int sfc, int from, int to, const uint64_t *mask, bool departing, bool pinned, json_t *records,
	    char *err, size_t errlen);
/* A new instance `slot` of `sfc` is ready: give it an even share of the SFC's buckets, moved from the
 * others (or all of them if it is the first). 0 or -1 (err). */
int sc_scale_out(int sfc, int slot, bool pinned, json_t *records, char *err, size_t errlen);
/* Instance `slot` is about to stop: move its buckets to the SFC's other instances (none: nothing to
 * move to; the caller decides whether that is allowed). 0 or -1 (err). */
int sc_scale_in(int slot, json_t *records, char *err, size_t errlen);
/* The control request move_flows: {"sfc", "from", "to", "buckets": [...] | "fraction": F}. */
json_t *move_flows(json_t *req);
/* The last move and the per-instance counters, for stats. */
json_t *sc_stats(void);

#pragma GCC visibility pop

#endif /* SERPENS_SCALE_CONTROL_H */
