/*
 * test_pace.c: unit test of serpens-gen's schedule arithmetic (pace.h):
 * what a stream owes, what it skips after a stall or when it is too slow,
 * and that the schedule is conserved (done = sent + skipped).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pace.h"

static int failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
			__LINE__, #cond); \
		failures++; \
	} \
} while (0)

#define HZ 1000000000ull        /* 1 tick = 1 ns, to read the numbers */
#define US 1000ull

/* 1 Mpps from TSC 0, catch-up 200 us (200 packets), burst 32. */
static struct pace mpps(void)
{
	struct pace p = { 0 };

	p.per_tsc = 1e6 / (double)HZ;
	p.start = 0;
	p.cap = pace_cap(1e6, 200, 32);
	return p;
}

static void test_cap_is_catchup_but_at_least_a_burst(void)
{
	CHECK(pace_cap(1e6, 200, 32) == 200);
	CHECK(pace_cap(8e6, 200, 32) == 1600);
	CHECK(pace_cap(1e3, 200, 32) == 32);   /* a latency stream */
	CHECK(pace_cap(1e6, 0, 32) == 32);
}

static void test_on_schedule_owes_what_fell_due(void)
{
	struct pace p = mpps();

	CHECK(pace_due(&p, 0) == 0);
	CHECK(pace_due(&p, 10 * US) == 10);
	CHECK(pace_owed(&p, pace_due(&p, 10 * US), 10 * US, 0) == 10);
	p.done += 10;
	CHECK(pace_owed(&p, pace_due(&p, 11 * US), 1 * US, 0) == 1);
	CHECK(p.skipped_stall == 0 && p.skipped_slow == 0);
}

static void test_stall_beyond_catchup_is_skipped_as_stall(void)
{
	struct pace p = mpps();
	uint64_t owed;

	p.done = pace_due(&p, 1000 * US);       /* on time at 1 ms */
	/* descheduled 5 ms: 5000 packets fell due, 200 may be caught up */
	owed = pace_owed(&p, pace_due(&p, 6000 * US), 5000 * US, 1);
	CHECK(owed == 200);
	CHECK(p.skipped_stall == 4800);
	CHECK(p.skipped_slow == 0);
	CHECK(p.done + owed == pace_due(&p, 6000 * US));
	CHECK(p.backlog_max == 200);
}

static void test_falling_behind_without_a_stall_is_slow(void)
{
	struct pace p = mpps();
	uint64_t owed, now;

	/* a loop that sends one burst every 50 us of a 1 Mpps schedule keeps
	 * up; one that sends 20 packets per 40 us (0.5 Mpps) falls behind */
	for (now = 40 * US; now <= 4000 * US; now += 40 * US) {
		owed = pace_owed(&p, pace_due(&p, now), 40 * US, 0);
		p.done += owed < 20 ? owed : 20;
	}
	CHECK(p.skipped_stall == 0);
	CHECK(p.skipped_slow > 1500 && p.skipped_slow < 2000);
	CHECK(p.backlog_max == 200);
}

static void test_slow_backlog_before_a_stall_stays_slow(void)
{
	struct pace p = mpps();
	uint64_t owed;

	/* 150 packets behind (slow), then a 1 ms stall: 1000 more fell due */
	p.done = pace_due(&p, 2000 * US) - 150;
	owed = pace_owed(&p, pace_due(&p, 3000 * US), 1000 * US, 1);
	CHECK(owed == 200);
	/* at most what fell due in the gap (+1 for rounding) is the stall's */
	CHECK(p.skipped_stall == 950);
	CHECK(p.skipped_slow == 0);
	p.done = pace_due(&p, 3000 * US) - 190;
	owed = pace_owed(&p, pace_due(&p, 3100 * US), 100 * US, 1);
	CHECK(owed == 200);
	CHECK(p.skipped_stall == 950 + 90);
	CHECK(p.skipped_slow == 0);
	/* a stream not looked at for a while (e.g. TX pool empty) may owe
	 * more than its cap before a short stall: only what fell due in the
	 * gap is the stall's, the rest is slow */
	p.done = pace_due(&p, 3100 * US) - 300;
	owed = pace_owed(&p, pace_due(&p, 3160 * US), 60 * US, 1);
	CHECK(owed == 200);
	CHECK(p.skipped_stall == 950 + 90 + 61);
	CHECK(p.skipped_slow == 99);
}

static void test_stream_starting_later_owes_nothing_before(void)
{
	struct pace p = mpps();

	p.start = 500 * US;                     /* isg 500 us */
	CHECK(pace_due(&p, 400 * US) == 0);
	CHECK(pace_owed(&p, pace_due(&p, 400 * US), 400 * US, 1) == 0);
	CHECK(pace_due(&p, 600 * US) == 100);
	CHECK(p.skipped_stall == 0);
}

/* single_burst: 1000 packets at 1 Mpps, then nothing more falls due, and a
 * stall never makes the stream owe more than what is left of it. */
static void test_single_burst_ends_at_its_total(void)
{
	struct pace p = mpps();

	pace_shape(&p, 1000, 0, 0);
	CHECK(pace_due(&p, 500 * US) == 500);
	CHECK(pace_due(&p, 1000 * US) == 1000);
	CHECK(pace_due(&p, 5000 * US) == 1000);
	p.done = 990;
	CHECK(pace_owed(&p, pace_due(&p, 5000 * US), 4000 * US, 1) == 10);
	p.done = 1000;
	CHECK(pace_next(&p) == UINT64_MAX);
	CHECK(pace_owed(&p, pace_due(&p, 9000 * US), 1 * US, 0) == 0);
}

/* multi_burst: 10 packets per burst at 1 Mpps (one per us), 100 us from a
 * burst's last packet to the next burst's first, 3 bursts. */
static void test_multi_burst_gaps_and_total(void)
{
	struct pace p = mpps();
	uint64_t first_of_2nd, last_of_1st;

	pace_shape(&p, 30, 10, 100 * US);
	CHECK(p.period == 109 * US);
	CHECK(pace_due(&p, 10 * US) == 10);     /* the whole first burst */
	CHECK(pace_due(&p, 60 * US) == 10);     /* the gap: nothing more */
	CHECK(pace_due(&p, 108 * US) == 10);
	CHECK(pace_due(&p, 110 * US) == 11);    /* the second burst */
	CHECK(pace_due(&p, 119 * US) == 20);
	CHECK(pace_due(&p, 10000 * US) == 30);  /* and no fourth */
	p.done = 9;
	last_of_1st = pace_next(&p);
	p.done = 10;
	first_of_2nd = pace_next(&p);
	CHECK(last_of_1st == 10 * US);
	CHECK(first_of_2nd - last_of_1st == 100 * US);
	p.done = 30;
	CHECK(pace_next(&p) == UINT64_MAX);
}

/* A continuous stream has no end (zero-initialised pace, as before). */
static void test_continuous_has_no_total(void)
{
	struct pace p = mpps();

	pace_shape(&p, 0, 0, 0);
	CHECK(pace_due(&p, 1000000 * US) == 1000000);
	pace_shape(&p, 0, 64, 5 * US);          /* bursts without a total */
	CHECK(p.period == 0);
}

int main(void)
{
	test_cap_is_catchup_but_at_least_a_burst();
	test_on_schedule_owes_what_fell_due();
	test_stall_beyond_catchup_is_skipped_as_stall();
	test_falling_behind_without_a_stall_is_slow();
	test_slow_backlog_before_a_stall_stays_slow();
	test_stream_starting_later_owes_nothing_before();
	test_single_burst_ends_at_its_total();
	test_multi_burst_gaps_and_total();
	test_continuous_has_no_total();
	if (failures) {
		fprintf(stderr, "test_pace: %d check(s) failed\n", failures);
		return EXIT_FAILURE;
	}
	printf("test_pace: ok\n");
	return EXIT_SUCCESS;
}
