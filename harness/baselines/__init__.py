"""The baselines of the paper reimplemented on the same substrate with the same NF code (Fission, SNF,
SAND, SOCK, Catalyzer, Photons, exec, OpenNF, S6, CHC), as compositions on the four axes of DESIGN.md
section 3. Built by later issues; nothing here yet."""
