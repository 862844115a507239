# serpens-harness — the commands a user runs (README.md). Every target does its own set-up first.
#   make reproduce     every experiment that exists, then the paper-claims report
#   make test          the test suite (unit + integration on real DPDK)
#   make limit         the testbed's own limit: NDR/PDR + latency of the wire at 64 B and 1500 B
#   make figure-11     instance startup vs. instances started together, memory vs. deployed NFs (Fig. 11)
#   make table-4       the scaling overhead of one new instance per mechanism (paper Table IV)
#   make figure-13     chains of 1-6 FWs on Fission's, SAND's and Serpens' chaining, one core (Fig. 13)
#   make figure-14     latency while half of the flows move to a new instance, per scaling protocol (Fig. 14)
#   make figure-15     the SFC FW→MON→NAT on Fission, SNF, SAND and Serpens, the wire too (Fig. 15);
#                      with TESTBED=inventory.yaml: Serpens with generator, gateway and worker on its hosts
#   make soak          ten minutes of Serpens FW→MON→NAT at 80 % of its PDR: memory, accounted loss, restarts
#   make check-paper   the paper's claims against the latest results
# QUICK=1 gives short trials and one repetition for every experiment target.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HARNESS := $(VENV)/bin/harness
QUICK ?= 0
ifeq ($(QUICK),1)
QUICKFLAG := --quick
endif
# Experiments this tree implements so far; `make reproduce` runs them all.
EXPERIMENTS := limit table-2 figure-11a figure-11b table-4 figure-12 figure-13 figure-14 figure-15

.PHONY: setup build test test-unit test-integration test-testbed bench reproduce check-paper lint clean distclean \
        $(EXPERIMENTS) figure-11 soak doctor

setup:
	@bash scripts/setup.sh all

build:
	@bash scripts/setup.sh build

doctor: setup
	@$(HARNESS) doctor

test: setup
	@meson test -C build/native -q --print-errorlogs
	@$(PY) data/ids/derive.py --check
	@$(PY) -m pytest tests/unit tests/integration tests/testbed -q

test-unit: setup
	@$(PY) -m pytest tests/unit -q

test-integration: setup
	@$(PY) -m pytest tests/integration -q

# the Fabric testbed on namespace hosts with their own sshd (docs/testbed.md)
test-testbed: setup
	@$(PY) -m pytest tests/testbed -q

bench: setup
	@$(PY) -m pytest tests/bench -q --benchmark-only --benchmark-autosave

# TESTBED=INVENTORY runs figure-15 across the inventory's hosts instead (`harness testbed run`, docs/testbed.md)
$(EXPERIMENTS): setup
	@$(HARNESS) $(QUICKFLAG) $(if $(and $(TESTBED),$(filter figure-15,$@)),testbed run -i $(TESTBED) $@,experiment $@)

figure-11: figure-11a figure-11b

# not in EXPERIMENTS (not part of `make reproduce`): ten minutes of Serpens at 80 % of its PDR
soak: setup
	@$(HARNESS) $(QUICKFLAG) experiment soak

reproduce: setup
	@for e in $(EXPERIMENTS); do $(HARNESS) $(QUICKFLAG) experiment $$e || exit 1; done
	@$(HARNESS) check-paper

check-paper: setup
	@$(HARNESS) check-paper $(if $(filter 1,$(STRICT)),--strict)

lint: setup
	@$(VENV)/bin/ruff check harness experiments testbed tests

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) results figures/*.png
