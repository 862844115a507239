"""`make limit` — the testbed's own limit: NDR/PDR and latency (at 80 % of PDR) of the wire platform at
64 B and 1500 B frames.

The wire forwards every packet straight back on the same DPDK substrate serpensd uses, so this is the
ceiling every platform is compared with on this machine: generator + link + one forwarding core.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.base import Experiment
from harness import plots
from harness.results import ResultWriter
from harness.rig import rig
from harness.traffic.measure import POINT_COLUMNS, Measurer, measure_point


class Limit(Experiment):
    name = "limit"
    title = "Testbed limit: the wire platform"
    columns = POINT_COLUMNS

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        return {"generator": c["generator"], "wire_forwarder": c["platform"]}

    def measure(self, writer: ResultWriter) -> None:
        traffic = self.config["traffic"]
        with rig(self.config, "wire") as r:
            writer.note("rig", r.describe())
            for frame in traffic["frame_sizes_b"]:
                for trial in self.repetitions():
                    prefix = f"{frame} B #{trial}: "
                    self.progress.say(f"{prefix}searching NDR/PDR")
                    m = Measurer(r.generator, frame, traffic["flows"], traffic["latency_pps"])
                    row, _ = measure_point(m, self.config,
                                           on_trial=lambda log, p=prefix: self.progress.trial(log, p))
                    row.update(platform="wire", workload="forward", trial=trial)
                    writer.write(row)
                    self.progress.say(
                        f"{prefix}NDR {row['ndr_mpps']:.3f} Mpps, PDR {row['pdr_mpps']:.3f} Mpps, latency "
                        f"p50 {row.get('latency_p50_us', float('nan')):.1f} µs "
                        f"p99 {row.get('latency_p99_us', float('nan')):.1f} µs at "
                        f"{row['load_fraction']:.0%} of PDR")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        plots.limit_figure(df, path)
