/*
 * state_stats.h: the state axis in serpensd's `stats` reply — the backend, how long split/merge/update
 * paused packet processing, and each instance's remote state access (docs/state-backends.md).
 */
#ifndef SERPENS_STATE_STATS_H
#define SERPENS_STATE_STATS_H

#include <jansson.h>

#include "ctl.h"

/* Fields for stats.state: {"backend", "pauses": {"split"|"merge"|"update": {count, last_us, max_us,
 * mean_us}}}. */
json_t *state_stats_region(struct sm_region *r, uint32_t backend);
/* ... over several regions (serpensd's, one per tenant: tenant_region.h), added up. */
json_t *state_stats_regions(struct sm_region *const *r, unsigned int n, uint32_t backend);
/* Fields for one entry of stats.instances: {"remote": {batches, round_trips, ops, ..., us_per_batch}}. */
json_t *state_stats_instance(const struct sp_instance *in);

#endif
