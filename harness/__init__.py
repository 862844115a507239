"""serpens-harness: reproduce Serpens (IEEE TPDS 2023) and compare NF platform designs on one machine or a
testbed. See README.md for the commands and docs/ for how each part works."""

__version__ = "0.1.0"
