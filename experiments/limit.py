"""`make limit` — this machine's own limit, against which every figure is read:

* the **floor**: a busy loop pinned to each vCPU in turn (harness.floor) — how often and how long the VM
  takes the CPU away, and steal time; measured first, on idle cores;
* the **wire**: conditional throughput (NDR/PDR goals) and latency at 80 % of PDR of the wire platform at
  64 B and 1500 B frames. The wire forwards every packet straight back on the same DPDK substrate serpensd
  uses: generator + link + one forwarding core, no NF.

Floor rows have platform ``machine``, workload ``busy-loop`` and a ``cpu``; wire rows have platform
``wire``, workload ``forward``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.throughput import Point, ThroughputExperiment
from harness import floor, plots
from harness.results import ResultWriter
from harness.traffic.measure import POINT_COLUMNS

FLOOR_COLUMNS = ["cpu", "probe_s", "floor_lost_ratio", "floor_max_gap_us", "floor_gaps_10us_100us_per_s",
                 "floor_gaps_100us_1ms_per_s", "floor_gaps_1ms_5ms_per_s", "floor_gaps_over_5ms_per_s",
                 "steal_ratio"]


class Limit(ThroughputExperiment):
    name = "limit"
    title = "Testbed limit: the machine's floor and the wire platform"
    columns = POINT_COLUMNS + FLOOR_COLUMNS

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        return {"generator": c["generator"], "wire_forwarder": c["platform"]}

    def points(self) -> list[Point]:
        return [Point("wire", "forward", frame) for frame in self.config["traffic"]["frame_sizes_b"]]

    def before_points(self, writer: ResultWriter) -> None:
        seconds = self.config["doctor"]["floor_probe_s"]
        if not seconds:
            self.progress.say("the machine's floor: skipped (doctor.floor_probe_s is 0)")
            return
        self.progress.say(f"the machine's floor: a pinned busy loop, {seconds:g} s on each vCPU in turn")
        for row in floor.measure_floor(self.config, seconds):
            writer.write({"platform": "machine", "workload": "busy-loop", **row})
            self.progress.say(f"vCPU {row['cpu']}: {row['floor_lost_ratio']:.2%} of time lost, longest gap "
                              f"{row['floor_max_gap_us'] / 1e3:.1f} ms, "
                              f"{row['floor_gaps_over_5ms_per_s']:.2f}/s gaps ≥ 5 ms, "
                              f"steal {row['steal_ratio']:.2%}")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        plots.limit_figure(df[df["platform"] == "wire"], path)
