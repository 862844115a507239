"""The baselines of the paper (Fission, SNF, SAND, SOCK, Catalyzer, Photons, exec, OpenNF, S6, CHC) are
designs, not classes: each is an entry of harness/platforms/designs.py run by the one design platform
(harness/serpens/platform.py), and each mechanism lives in serpensd (native/serpens) behind its axis' option.
docs/baselines.md says which value each system takes on each axis, and why."""
