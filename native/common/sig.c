/*
 * sig.c: flag-only signal handlers (see sig.h for why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"

volatile sig_atomic_t sig_quit;
volatile sig_atomic_t sig_snapshot;

static void on_quit(int signum)
{
	(void)signum;
	sig_quit = 1;
}

static void on_usr1(int signum)
{
	(void)signum;
	sig_snapshot = 1;
}

static void install_one(int signum, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking call should return so the loop sees the flag. */
	if (sigaction(signum, &sa, NULL) != 0) {
		perror("sigaction");
		exit(EXIT_FAILURE);
	}
}

void sig_install(int want_usr1)
{
	install_one(SIGINT, on_quit);
	install_one(SIGTERM, on_quit);
	if (want_usr1)
		install_one(SIGUSR1, on_usr1);
}
