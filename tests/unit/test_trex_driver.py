"""TRexGenerator against a fake STLClient: call sequence, counters -> TrialResult, latency, errors.

The fake returns stats shaped like trex-stl-lib's ``STLClient.get_stats()``: per-port dicts keyed by port
number, ``'total'``, ``'global'``, ``'flow_stats'`` (per pg_id, counters per port plus ``'total'``) and
``'latency'`` (per pg_id: ``'err_cntrs'`` and ``'latency'`` with a ``{usec_bucket: count}`` histogram).
No TRex server is involved; see docs/trex.md for what remains to validate on a testbed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from harness.traffic.base import GeneratorError
from harness.traffic.trex import TRexGenerator, bucket_values, describe, latency_from_trex, mult_string

pytest.importorskip("trex_stl_lib.api")

from hdrh.histogram import HdrHistogram  # noqa: E402

from harness.traffic import profiles  # noqa: E402

PG = 7


def port_stats(opackets: int = 0, ipackets: int = 0, frame: int = 64) -> dict[str, Any]:
    return {"opackets": opackets, "ipackets": ipackets, "obytes": opackets * frame,
            "ibytes": ipackets * frame, "oerrors": 0, "ierrors": 0, "tx_bps": 0.0, "tx_pps": 0.0,
            "tx_bps_L1": 0.0, "tx_util": 0.0, "rx_bps": 0.0, "rx_pps": 0.0, "rx_bps_L1": 0.0, "rx_util": 0.0}


def per_port(p0: Any, p1: Any) -> dict[Any, Any]:
    return {0: p0, 1: p1, "total": p0 + p1}


def trex_stats(tx: int = 3_002_000, rx: int = 3_001_000, lat_tx: int = 2_000, lat_rx: int = 1_990,
               histogram: dict[int, int] | None = None, latency: dict[str, Any] | None = None,
               same_port: bool = False) -> dict[Any, Any]:
    """What STLClient.get_stats(ports=[0, 1]) returns after port 0 sent ``tx`` and ``rx`` came back."""
    if same_port:
        ports = {0: port_stats(tx, rx), 1: port_stats()}
    else:
        ports = {0: port_stats(tx, 0), 1: port_stats(0, rx)}
    if histogram is None:
        histogram = {10: 1000, 20: 790, 100: 200}
    lat = {"average": 30.0, "histogram": histogram,
           "jitter": 3, "last_max": 150, "total_max": 150, "total_min": 10}
    lat.update(latency or {})
    return {
        **ports,
        "total": {k: ports[0][k] + ports[1][k] for k in ports[0]},
        "global": {"cpu_util": 12.5, "rx_cpu_util": 0.5, "bw_per_core": 9.1, "tx_bps": 0.0, "tx_pps": 0.0,
                   "rx_bps": 0.0, "rx_pps": 0.0, "rx_drop_bps": 0.0, "queue_full": 0},
        "flow_stats": {
            PG: {"rx_pkts": per_port(0, lat_rx), "tx_pkts": per_port(lat_tx, 0),
                 "rx_bytes": per_port(0, lat_rx * 64), "tx_bytes": per_port(lat_tx * 64, 0),
                 "rx_bps": per_port(0, 0), "rx_pps": per_port(0, 0), "tx_bps": per_port(0, 0),
                 "tx_pps": per_port(0, 0), "rx_bps_l1": {0: 0.0, 1: 0.0}, "tx_bps_l1": {0: 0.0, 1: 0.0}},
            "global": {"rx_err": {0: 0, 1: 0}, "tx_err": {0: 0, 1: 0}},
        },
        "latency": {
            PG: {"err_cntrs": {"dropped": lat_tx - lat_rx, "dup": 0, "out_of_order": 3, "seq_too_high": 1,
                               "seq_too_low": 3},
                 "latency": lat},
            "global": {"old_flow": 0, "bad_hdr": 0},
        },
    }


class FakeClient:
    """Records every call; behaves like a connected STLClient that sends instantly."""

    def __init__(self, stats: dict[Any, Any] | None = None, **kwargs: Any) -> None:
        self.init = kwargs
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stats = stats if stats is not None else trex_stats()
        self.fail: dict[str, BaseException] = {}

    def _record(self, name: str, **kwargs: Any) -> Any:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def connect(self) -> None:
        self._record("connect")

    def disconnect(self, stop_traffic: bool = True, release_ports: bool = True) -> None:
        self._record("disconnect", stop_traffic=stop_traffic, release_ports=release_ports)

    def acquire(self, ports: Any = None, force: bool = False, sync_streams: bool = True) -> None:
        self._record("acquire", ports=ports, force=force)

    def reset(self, ports: Any = None, restart: bool = False) -> None:
        self._record("reset", ports=ports)

    def set_port_attr(self, ports: Any = None, promiscuous: Any = None, **kwargs: Any) -> None:
        self._record("set_port_attr", ports=ports, promiscuous=promiscuous)

    def clear_stats(self, ports: Any = None, **kwargs: Any) -> None:
        self._record("clear_stats", ports=ports)

    def get_server_version(self) -> dict[str, str]:
        self._record("get_server_version")
        return {"version": "v3.06", "mode": "Stateless", "build_date": "Jan 1 2025"}

    def stop(self, ports: Any = None, rx_delay_ms: Any = None) -> None:
        self._record("stop", ports=ports)

    def remove_all_streams(self, ports: Any = None) -> None:
        self._record("remove_all_streams", ports=ports)

    def add_streams(self, streams: Any, ports: Any = None) -> list[int]:
        self._record("add_streams", streams=streams, ports=ports)
        return list(range(1, len(streams) + 1))

    def start(self, ports: Any = None, mult: str = "1", force: bool = False, duration: float = -1,
              total: bool = False, core_mask: Any = None, synchronized: bool = False) -> None:
        self._record("start", ports=ports, mult=mult, force=force, duration=duration)

    def wait_on_traffic(self, ports: Any = None, timeout: Any = None, rx_delay_ms: Any = None) -> None:
        self._record("wait_on_traffic", ports=ports, timeout=timeout, rx_delay_ms=rx_delay_ms)

    def get_stats(self, ports: Any = None, sync_now: bool = True) -> dict[Any, Any]:
        self._record("get_stats", ports=ports)
        return self.stats

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Clock:
    """A clock that only moves when the driver sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(client: FakeClient | None = None, **kwargs: Any) -> tuple[TRexGenerator, FakeClient, Clock]:
    client = client or FakeClient()
    clock = Clock()

    def factory(**init: Any) -> FakeClient:
        client.init = init
        return client

    gen = TRexGenerator("trex.example", client_factory=factory, sleep=clock.sleep, clock=clock, **kwargs)
    return gen, client, clock


def streams(rate_pps: float = 1e6) -> list[Any]:
    return profiles.load_with_latency(rate_pps, 64, 16, latency_pps=1000, pg_id=PG)


def test_connect_acquires_resets_and_clears_the_configured_ports() -> None:
    gen, client, _ = make()
    gen.connect()
    assert client.init == {"server": "trex.example", "sync_port": 4501, "async_port": 4500}
    assert client.calls == [
        ("connect", {}),
        ("acquire", {"ports": [0, 1], "force": True}),
        ("reset", {"ports": [0, 1]}),
        ("set_port_attr", {"ports": [0, 1], "promiscuous": True}),
        ("clear_stats", {"ports": [0, 1]}),
        ("get_server_version", {}),
    ]
    gen.connect()                                   # idempotent
    assert client.names().count("connect") == 1
    assert gen.version() == "trex v3.06"


def test_one_trial_is_reset_add_clear_start_wait_read() -> None:
    gen, client, _ = make()
    gen.connect()
    client.calls.clear()
    s = streams()
    gen.run_trial(s, duration=2.0, mult=1.5)
    assert client.calls == [
        ("stop", {"ports": [0, 1]}),
        ("remove_all_streams", {"ports": [0, 1]}),
        ("clear_stats", {"ports": [0, 1]}),
        ("add_streams", {"streams": s, "ports": [0]}),
        ("clear_stats", {"ports": [0, 1]}),
        ("start", {"ports": [0], "mult": "1.5", "force": True, "duration": 2.0}),
        ("wait_on_traffic", {"ports": [0], "timeout": 62.0, "rx_delay_ms": None}),
        ("get_stats", {"ports": [0, 1]}),
    ]


def test_only_ports_with_streams_are_started() -> None:
    gen, client, _ = make(ports=(0, 1))
    gen.connect()
    gen.reset()
    gen.add_streams(streams(), port=0)
    gen.add_streams(profiles.udp_flows(5e5), port=1)
    gen.start(duration=1.0)
    assert dict(client.calls)["start"]["ports"] == [0, 1]


def test_counters_settle_before_they_are_read() -> None:
    gen, client, clock = make(settle_s=0.25)
    gen.connect()
    gen.reset()
    gen.add_streams(streams())
    gen.start(duration=1.0)
    gen.wait_on_traffic()
    assert clock.sleeps == [pytest.approx(0.25)]
    gen.get_stats()
    assert clock.sleeps == [pytest.approx(0.25)]    # already settled: no second pause


def test_counters_settle_after_an_early_stop_too() -> None:
    gen, client, clock = make(settle_s=0.1)
    gen.connect()
    gen.reset()
    gen.add_streams(streams())
    gen.start(duration=10.0)
    clock.now += 4.0
    gen.stop()
    result = gen.get_stats()
    assert clock.sleeps == [pytest.approx(0.1)]
    assert result.duration_s == pytest.approx(4.0)  # it sent for 4 s, not the 10 asked for


def test_port_counters_become_the_trial_result() -> None:
    gen, _, _ = make()
    gen.connect()
    r = gen.run_trial(streams(), duration=3.0)
    assert (r.tx_packets, r.rx_packets) == (3_002_000, 3_001_000)   # opackets port 0, ipackets port 1
    assert (r.tx_bytes, r.rx_bytes) == (3_002_000 * 64, 3_001_000 * 64)
    assert r.offered_pps == pytest.approx(1_001_000)
    assert r.duration_s == 3.0
    assert r.loss_packets == 1_000
    assert r.generator == "trex v3.06"
    assert not r.short


def test_mult_scales_the_load_but_not_the_latency_stream() -> None:
    gen, _, _ = make()
    gen.connect()
    r = gen.run_trial(streams(1e6), duration=1.0, mult=2.5)
    assert r.offered_pps == pytest.approx(2.5e6 + 1000)


def test_loopback_topology_reads_rx_on_the_sending_port() -> None:
    gen, client, _ = make(FakeClient(trex_stats(tx=100, rx=90, same_port=True)), ports=(0,), rx_ports="same")
    gen.connect()
    assert dict(client.calls)["acquire"]["ports"] == [0]
    r = gen.run_trial(streams(), duration=1.0)
    assert (r.tx_packets, r.rx_packets) == (100, 90)


def test_explicit_rx_mapping() -> None:
    gen, _, _ = make(FakeClient(trex_stats(tx=100, rx=80)), ports=(0,), rx_ports={0: 1})
    gen.connect()
    r = gen.run_trial(streams(), duration=1.0)
    assert (r.tx_packets, r.rx_packets) == (100, 80)
    with pytest.raises(ValueError, match="receive port"):
        make(ports=(0, 2), rx_ports={0: 1})


def test_tx_port_rx_port_shorthand_as_in_the_configuration() -> None:
    gen, client, _ = make(FakeClient(trex_stats(tx=100, rx=90, same_port=True)), tx_port=0, rx_port=0)
    gen.connect()
    assert dict(client.calls)["acquire"]["ports"] == [0]
    r = gen.run_trial(streams(), duration=1.0)
    assert (r.tx_packets, r.rx_packets) == (100, 90)
    gen, client, _ = make(tx_port=1, rx_port=0)
    assert (gen.ports, gen.rx_of, gen.all_ports) == ([1], {1: 0}, [0, 1])
    with pytest.raises(ValueError, match="not both"):
        make(tx_port=0, ports=(0,))


def test_latency_percentiles_come_from_trex_histogram() -> None:
    gen, _, _ = make()
    gen.connect()
    r = gen.run_trial(streams(), duration=1.0)
    lat = r.latency[PG]
    # 1000 packets in 10-19 us, 790 in 20-29 us, 200 in 100-199 us (max 150): midpoints 15, 25, 150.
    assert lat.p50_ns == pytest.approx(15_000, rel=1e-3)
    assert lat.p99_ns == pytest.approx(150_000, rel=1e-3)
    assert lat.p999_ns == pytest.approx(150_000, rel=1e-3)
    assert (lat.min_ns, lat.mean_ns, lat.max_ns) == (10_000, 30_000, 150_000)   # TRex's own fields
    assert (lat.tx_packets, lat.rx_packets, lat.out_of_order, lat.lost) == (2_000, 1_990, 3, 10)
    decoded = HdrHistogram.decode(lat.histogram)
    assert decoded.get_total_count() == 1_990
    assert decoded.get_value_at_percentile(80) == pytest.approx(25_000, rel=1e-3)


def test_latency_prefers_trex_hdr_histogram_when_present() -> None:
    trex_hdr = HdrHistogram(1, 60_000_000, 3)          # TRex's: microseconds
    trex_hdr.record_value(12, 900)
    trex_hdr.record_value(47, 90)
    trex_hdr.record_value(230, 10)
    encoded = trex_hdr.encode().decode()
    stats = trex_stats(lat_rx=1000, latency={"hdrh": encoded, "total_min": 10, "total_max": 231,
                                             "average": 99.0})
    gen, _, _ = make(FakeClient(stats))
    gen.connect()
    lat = gen.run_trial(streams(), duration=1.0).latency[PG]
    assert lat.p50_ns == pytest.approx(12_000, rel=1e-3)
    assert lat.p99_ns == pytest.approx(47_000, rel=1e-3)
    assert lat.p999_ns == pytest.approx(230_000, rel=1e-3)
    assert lat.min_ns == pytest.approx(12_000, rel=1e-3)      # per packet, not TRex's 10 us bucket
    assert lat.mean_ns == pytest.approx((900 * 12 + 90 * 47 + 10 * 230) * 1000 / 1000, rel=1e-2)
    assert lat.max_ns == 231_000


def test_latency_without_packets_reports_no_histogram() -> None:
    stats = trex_stats(lat_rx=0, histogram={})
    stats["latency"][PG]["latency"]["total_min"] = "N/A"      # what StatNotAvailable prints as
    gen, _, _ = make(FakeClient(stats))
    gen.connect()
    lat = gen.run_trial(streams(), duration=1.0).latency[PG]
    assert (lat.rx_packets, lat.tx_packets, lat.histogram) == (0, 2_000, "")
    assert lat.lost == 2_000


def test_stat_not_available_counts_as_missing() -> None:
    types = pytest.importorskip("trex_stl_lib.trex_stl_types")
    entry = {"err_cntrs": {"out_of_order": 0, "dropped": 0},
             "latency": {"histogram": {20: 10}, "total_min": types.StatNotAvailable("total_min"),
                         "total_max": 27, "average": types.StatNotAvailable("average")}}
    lat = latency_from_trex(PG, entry, None)
    assert lat.rx_packets == 10                               # from the histogram when flow stats lack it
    assert lat.p50_ns == pytest.approx(25_000, rel=1e-3)
    assert lat.min_ns == pytest.approx(25_000, rel=1e-3)      # from the histogram, not 'N/A'
    assert lat.max_ns == 27_000


def test_bucket_midpoints_are_clamped_to_trex_min_and_max() -> None:
    assert bucket_values({0: 4, 10: 1, 200: 2, 1000: 3}) == [(5.0, 4), (15.0, 1), (250.0, 2), (1500.0, 3)]
    assert bucket_values({10: 1, 100: 1}, min_us=17, max_us=120) == [(17, 1), (120, 1)]


def test_raw_report_is_plain_json() -> None:
    types = pytest.importorskip("trex_stl_lib.trex_stl_types")
    stats = trex_stats()
    stats[0]["tx_util"] = types.StatNotAvailable("tx_util")
    stats["global"]["cpu_util"] = math.nan
    gen, _, _ = make(FakeClient(stats))
    gen.connect()
    r = gen.run_trial(streams(), duration=1.0)
    text = json.dumps(r.raw, allow_nan=False)
    assert r.raw["ports"]["0"]["tx_util"] is None and r.raw["global"]["cpu_util"] is None
    assert '"7"' in text and r.raw["server"] == "trex.example:4501"


def test_connection_failure_names_the_server_and_points_to_doctor() -> None:
    client = FakeClient()
    client.fail["connect"] = ConnectionError("connection refused")
    gen, _, _ = make(client)
    with pytest.raises(GeneratorError, match=r"trex\.example:4501.*connection refused.*harness doctor"):
        gen.connect()
    with pytest.raises(GeneratorError, match="connect"):
        gen.reset()                                             # still not connected


def test_connection_failure_with_trex_stl_lib_error_keeps_its_message() -> None:
    exceptions = pytest.importorskip("trex_stl_lib.trex_stl_exceptions")
    client = FakeClient()
    client.fail["connect"] = exceptions.STLError("*** [RPC] - Failed to get server response")
    gen, _, _ = make(client)
    with pytest.raises(GeneratorError, match=r"Failed to get server response.*harness doctor"):
        gen.connect()


def test_failure_after_connecting_disconnects_and_says_what_failed() -> None:
    client = FakeClient()
    client.fail["acquire"] = RuntimeError("port 1 is owned by 'alice'")
    gen, _, _ = make(client)
    with pytest.raises(GeneratorError, match="acquire ports.*alice"):
        gen.connect()
    assert client.names()[-1] == "disconnect"


def test_traffic_that_does_not_end_is_stopped_and_reported() -> None:
    client = FakeClient()
    client.fail["wait_on_traffic"] = TimeoutError("timeout")
    gen, _, _ = make(client)
    gen.connect()
    with pytest.raises(GeneratorError, match="did not end"):
        gen.run_trial(streams(), duration=1.0)
    assert client.names()[-1] == "stop"


def test_counters_are_not_read_while_traffic_runs() -> None:
    gen, _, _ = make()
    gen.connect()
    gen.reset()
    gen.add_streams(streams())
    gen.start(duration=5.0)
    with pytest.raises(GeneratorError, match="while the traffic runs"):
        gen.get_stats()


def test_missing_port_counter_is_an_error_not_a_zero() -> None:
    stats = trex_stats()
    del stats[1]["ipackets"]
    gen, _, _ = make(FakeClient(stats))
    gen.connect()
    with pytest.raises(GeneratorError, match="ipackets"):
        gen.run_trial(streams(), duration=1.0)


def test_bad_calls_are_generator_errors() -> None:
    gen, _, _ = make(ports=(0, 1))
    with pytest.raises(GeneratorError, match="connect"):
        gen.add_streams(streams())
    gen.connect()
    with pytest.raises(GeneratorError, match="nothing to send"):
        gen.start(duration=1.0)
    with pytest.raises(GeneratorError, match="port 3"):
        gen.add_streams(streams(), port=3)
    with pytest.raises(GeneratorError, match="to_json"):
        gen.add_streams([s.to_json() for s in streams()])
    gen.add_streams(streams())
    for mult in (0, -1.0, math.inf, math.nan):
        with pytest.raises(GeneratorError, match="mult"):
            gen.start(duration=1.0, mult=mult)
    with pytest.raises(GeneratorError, match="duration"):
        gen.start(duration=0)


def test_disconnect_is_idempotent_and_releases_the_ports() -> None:
    gen, client, _ = make()
    gen.connect()
    gen.disconnect()
    gen.disconnect()
    assert client.calls[-1] == ("disconnect", {"stop_traffic": True, "release_ports": True})
    assert client.names().count("disconnect") == 1


@pytest.mark.parametrize(("mult", "text"), [(1, "1.0"), (1.5, "1.5"), (0.25, "0.25"), (1e-05, "0.00001"),
                                            (2.0000001, "2.0000001"), (1e6, "1000000.0")])
def test_mult_is_a_plain_decimal_the_client_accepts(mult: float, text: str) -> None:
    parsing = pytest.importorskip("trex_stl_lib.utils.parsing_opts")
    assert mult_string(mult) == text
    decoded = parsing.decode_multiplier(text, allow_update=False, divide_count=1)
    assert decoded == {"type": "raw", "value": pytest.approx(mult), "op": "abs"}


def test_describe_survives_stl_error_str_inside_except() -> None:
    exceptions = pytest.importorskip("trex_stl_lib.trex_stl_exceptions")
    try:
        raise exceptions.STLError("boom")
    except exceptions.STLError as exc:
        assert describe(exc) == "boom"


@pytest.mark.slow
def test_real_client_to_a_closed_loopback_port_fails_cleanly() -> None:
    """The real trex-stl-lib client (no fake), pointed at a loopback port nothing listens on (~10 s)."""
    gen = TRexGenerator("127.0.0.1", sync_port=45901, async_port=45900)
    with pytest.raises(GeneratorError, match=r"127\.0\.0\.1:45901.*harness doctor"):
        gen.connect()
