"""Traffic: generator drivers (built-in DPDK, TRex, simulated), STL profiles, the measurer and the NDR/PDR
search. Importing this package makes trex-stl-lib's layer-name offsets work with current scapy."""

from harness.traffic import stl_compat

stl_compat.apply()
