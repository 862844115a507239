"""Namespace test hosts on this machine (hosts.py)."""
