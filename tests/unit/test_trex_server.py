"""The TRex-compatible server without packets: JSON-RPC framing and errors, the counter and latency mapping,
the multiplier, and trex-stl-lib's real STLClient over loopback ZMQ for everything that sends no traffic
(connect, api_sync, acquire, reset, port attributes, stats, unknown methods). Trials are in
tests/integration/test_trex_server.py."""

from __future__ import annotations

import contextlib
import json
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.traffic.trex_server import rpc, wire
from harness.traffic.trex_server.rpc import RpcError
from harness.traffic.trex_server.stats import PgId, PortCounters, global_snapshot, trex_bucket
from harness.traffic.trex_server.trial import scale

pytest.importorskip("trex_stl_lib.api")

from hdrh.histogram import HdrHistogram  # noqa: E402

from harness.traffic import profiles  # noqa: E402
from harness.traffic.trex_server.server import TRexServer  # noqa: E402

# --- JSON-RPC ----------------------------------------------------------------------------------------------

def dispatcher() -> rpc.Dispatcher:
    d = rpc.Dispatcher()
    d.register("echo", lambda p: {"x": p.get("x")}, needs_api_h=False)
    d.register("guarded", lambda p: "ok")
    d.api_handles.add("H")

    def refuse(p: dict[str, Any]) -> Any:
        raise RpcError("no, because")

    def crash(p: dict[str, Any]) -> Any:
        raise ZeroDivisionError("boom")

    d.register("refuse", refuse, needs_api_h=False)
    d.register("crash", crash, needs_api_h=False)
    return d


def call(d: rpc.Dispatcher, message: Any) -> Any:
    return json.loads(d.handle_text(json.dumps(message)))


def req(method: str, params: Any = None, req_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}


def test_a_request_gets_its_result_and_id_back() -> None:
    assert call(dispatcher(), req("echo", {"x": 3}, "abc")) == {"jsonrpc": "2.0", "id": "abc",
                                                                "result": {"x": 3}}


@pytest.mark.parametrize("message, code", [
    (req("no_such_method"), rpc.METHOD_NOT_FOUND),
    ({"id": 1, "method": "echo"}, rpc.INVALID_REQUEST),           # no "jsonrpc": "2.0"
    (req("echo", [1, 2]), rpc.INVALID_PARAMS),                    # params must be an object
    (req("guarded", {}), rpc.INVALID_PARAMS),                     # no api_h
    (req("guarded", {"api_h": "wrong"}), rpc.INVALID_PARAMS),
    (req("guarded", {"api_h": ["unhashable"]}), rpc.INVALID_PARAMS),
    (req("refuse"), rpc.SERVER_ERROR),
    (req("crash"), rpc.SERVER_ERROR),                            # a handler's bug is an error, not a crash
    ("not an object", rpc.INVALID_REQUEST),
])
def test_bad_requests_are_json_rpc_errors(message: Any, code: int) -> None:
    answer = call(dispatcher(), message)
    assert answer["error"]["code"] == code
    assert answer["error"]["specific_err"]    # what trex-stl-lib shows
    assert "result" not in answer


def test_errors_say_why() -> None:
    d = dispatcher()
    assert "no, because" in call(d, req("refuse"))["error"]["specific_err"]
    assert "ZeroDivisionError: boom" in call(d, req("crash"))["error"]["specific_err"]
    assert "'no_such_method'" in call(d, req("no_such_method"))["error"]["specific_err"]


def test_unparsable_json_is_a_parse_error() -> None:
    answer = json.loads(dispatcher().handle_text("{not json"))
    assert answer["error"]["code"] == rpc.PARSE_ERROR and answer["id"] is None


def test_a_batch_is_answered_in_order_each_on_its_own() -> None:
    answers = call(dispatcher(), [req("echo", {"x": 1}, 1), req("refuse", None, 2), req("echo", {"x": 3}, 3)])
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[0]["result"] == {"x": 1} and "error" in answers[1] and answers[2]["result"] == {"x": 3}


def test_compressed_requests_are_inflated_as_trex_stl_lib_frames_them() -> None:
    body = json.dumps(req("echo", {"x": "y" * 400})).encode()
    framed = struct.pack(">II", wire.COMPRESS_MAGIC, len(body)) + zlib.compress(body)
    assert wire.inflate(framed) == body
    assert wire.inflate(b'{"short": 1}') == b'{"short": 1}'
    with pytest.raises(ValueError, match="header says"):
        wire.inflate(struct.pack(">II", wire.COMPRESS_MAGIC, 5) + zlib.compress(body))


# --- counters and latency ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ns, key", [(0, 0), (9_999, 0), (10_000, 10), (19_999, 10), (20_000, 20),
                                     (99_999, 90), (100_000, 100), (199_999, 100), (950_000, 900),
                                     (1_000_000, 1000), (25_000_000, 20000)])
def test_latency_buckets_follow_trex(ns: int, key: int) -> None:
    # trex-core src/time_histogram.cpp: key k counts [k, k + 10**floor(log10 k)) µs, "0" what is under 10 µs
    assert trex_bucket(ns) == key


REPORT = {
    "tx_packets": 1000, "rx_packets": 990, "tx_bytes": 60_000, "rx_bytes": 59_400, "duration_s": 2.0,
    "imissed": 3, "rx_nombuf": 1,
    "streams": [{"index": 0, "packet_len": 60, "tx_packets": 900, "tx_bytes": 54_000, "latency_pg_id": None},
                {"index": 1, "packet_len": 60, "tx_packets": 100, "tx_bytes": 6_000, "latency_pg_id": 5}],
    "latency": {"5": {"tx_packets": 100, "rx_packets": 98, "out_of_order": 2, "min_ns": 800,
                      "max_ns": 150_300, "mean_ns": 12_500.0,
                      "buckets": [[800, 50], [9_900, 20], [15_000, 20], [150_300, 8]]}},
}


def test_port_counters_add_whole_trials_with_the_fcs() -> None:
    c = PortCounters()
    c.add_trial(REPORT)
    c.add_trial(REPORT)
    assert (c.opackets, c.ipackets) == (2000, 1980)
    assert (c.obytes, c.ibytes) == (2 * (60_000 + 4 * 1000), 2 * (59_400 + 4 * 990))
    assert c.ierrors == 8
    assert c.tx_pps == 500.0 and c.rx_pps == 495.0     # the last trial's averages
    snap = global_snapshot({0: c})
    assert snap["opackets-0"] == 2000 and snap["ipackets-0"] == 1980 and snap["m_total_tx_pkts"] == 2000


def test_pg_id_statistics_from_a_report() -> None:
    pg = PgId(ver_id=1, ports=[0, 1])
    pg.add_trial(0, REPORT["latency"]["5"], REPORT["streams"][1])
    flow = pg.flow_json()
    assert flow["tp"] == {"0": 100, "1": 0} and flow["rp"] == {"0": 98, "1": 0}
    assert flow["tb"]["0"] == 6_000 + 4 * 100 and flow["rb"]["0"] == 98 * 64
    lat = pg.latency_json()
    assert lat["er"] == {"drp": 2, "ooo": 2}
    assert lat["lat"]["histogram"] == {"0": 70, "10": 20, "100": 8}
    assert lat["lat"]["total_max"] == 150 and lat["lat"]["last_max"] == 150
    assert lat["lat"]["average"] == pytest.approx(12.5)
    h = HdrHistogram.decode(lat["lat"]["hdrh"])      # µs, as TRex v3 sends it
    assert h.get_total_count() == 98 and h.get_max_value() == pytest.approx(150, rel=0.01)
    # a second trial: counters add up, the maximum is kept, the average is TRex's low-pass filter
    pg.add_trial(0, {**REPORT["latency"]["5"], "max_ns": 20_000, "mean_ns": 2_500.0}, REPORT["streams"][1])
    lat = pg.latency_json()["lat"]
    assert lat["total_max"] == 150 and lat["last_max"] == 20
    assert lat["average"] == pytest.approx(7.5)
    assert pg.flow_json()["tp"]["0"] == 200


# --- multiplier -------------------------------------------------------------------------------------------

def streams_json() -> list[dict[str, Any]]:
    return [s.to_json() for s in profiles.load_with_latency(1_000_000, 64, 16, latency_pps=1000)]


@pytest.mark.parametrize("mul, factor", [
    ({"type": "raw", "value": 2.5, "op": "abs"}, 2.5),
    ({"type": "pps", "value": 250_000, "op": "abs"}, 0.25),
    ({"type": "bps", "value": 8 * 64 * 2_000_000, "op": "abs"}, 2.0),
    ({"type": "bpsl1", "value": 8 * 84 * 500_000, "op": "abs"}, 0.5),
])
def test_the_multiplier_scales_every_stream_but_latency_streams(mul: dict[str, Any], factor: float) -> None:
    scaled, got = scale(streams_json(), mul)
    assert got == pytest.approx(factor)
    assert scaled[0]["mode"]["rate"]["value"] == pytest.approx(1_000_000 * factor)
    assert scaled[1]["mode"]["rate"]["value"] == 1000      # latency streams keep their rate, as in TRex


@pytest.mark.parametrize("mul, match", [
    ({"type": "percentage", "value": 50, "op": "abs"}, "line rate"),
    ({"type": "raw", "value": 0, "op": "abs"}, "positive"),
    ({"type": "raw", "value": 1, "op": "add"}, "abs"),
    ({"type": "furlongs", "value": 1, "op": "abs"}, "furlongs"),
])
def test_bad_multipliers_are_refused(mul: dict[str, Any], match: str) -> None:
    with pytest.raises(RpcError, match=match):
        scale(streams_json(), mul)


# --- the real client, no traffic --------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[TRexServer]:
    config = cfg.load()
    srv = TRexServer(config, ["net_memif0,role=client,socket=/nonexistent/a", "net_memif1,role=client,"
                              "socket=/nonexistent/b"], tmp_path, rpc_port=0, pub_port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    thread.join(10)


@contextlib.contextmanager
def stl_error(match: str) -> Iterator[None]:
    """Like pytest.raises(match=...) for trex-stl-lib's STLError, whose str() itself raises (docs/trex.md)."""
    from harness.traffic.trex import describe

    try:
        yield
    except Exception as exc:
        assert re.search(match, describe(exc)), describe(exc)
    else:
        pytest.fail(f"no error matching {match!r}")


def client_for(srv: TRexServer) -> Any:
    from harness.traffic.trex import default_client_factory

    return default_client_factory(server="127.0.0.1", sync_port=srv.rpc_port, async_port=srv.pub_port)


def test_the_real_client_connects_acquires_resets_and_reads_stats(server: TRexServer) -> None:
    c = client_for(server)
    c.connect()
    try:
        assert c.get_server_version()["version"].startswith("serpens-builtin")
        assert c.get_port_count() == 2
        c.acquire(ports=[0, 1], force=True)
        c.reset(ports=[0, 1])
        c.set_port_attr(ports=[0, 1], promiscuous=True)
        assert c.get_port_attr(0)["prom"] == "on"
        assert server.ports[0].promiscuous and server.ports[1].promiscuous
        c.clear_stats()
        stats = c.get_stats(ports=[0, 1])
        assert stats[0]["opackets"] == 0 and stats[1]["ipackets"] == 0
        assert stats["latency"] == {"global": {"old_flow": 0, "bad_hdr": 0}}
        assert stats["flow_stats"] == {"global": {"rx_err": {"0": 0, "1": 0}, "tx_err": {"0": 0, "1": 0}}}
        assert c.get_active_pgids() == {"latency": [], "flow_stats": []}
        rc = c._transmit("pause_traffic", params={"handler": c.ports[0].handler, "port_id": 0})
        assert not rc and "cannot pause" in rc.err()
        rc = c._transmit("add_stream", params={"handler": "stolen", "port_id": 0, "stream_id": 1,
                                               "stream": {}})
        assert not rc and "invalid handler" in rc.err()
    finally:
        c.disconnect()
    assert server.ports[0].handler is None     # released on disconnect


def test_an_unknown_method_is_an_error_and_the_server_answers_on(server: TRexServer) -> None:
    c = client_for(server)
    c.connect()
    try:
        rc = c._transmit("no_such_method", params={})
        assert not rc and "no_such_method" in rc.err()
        assert c.ping_rpc_server() is not None
    finally:
        c.disconnect()


def test_a_port_owned_by_another_session_needs_force(server: TRexServer) -> None:
    a, b = client_for(server), client_for(server)
    a.connect()
    b.connect()
    try:
        a.acquire(ports=[0])
        with stl_error("already owned"):
            b.acquire(ports=[0])
        b.acquire(ports=[0], force=True)
        assert server.ports[0].session_id == b.session_id
    finally:
        b.disconnect()
        a.disconnect(release_ports=False)


def test_an_old_api_version_is_refused_with_trex_s_message(server: TRexServer) -> None:
    d = server.dispatcher
    answer = call(d, req("api_sync", {"api_vers": [{"type": "core", "major": 3, "minor": 0}]}))
    assert "RPC version mismatch" in answer["error"]["specific_err"]
    answer = call(d, req("api_sync", {"api_vers": [{"type": "core", "major": 4, "minor": 1}]}))
    assert answer["result"]["api_vers"][0]["type"] == "core"


def test_the_trex_driver_refuses_serpens_gen_only_options_rather_than_dropping_them(tmp_path: Path) -> None:
    from harness.rig import make_generator
    from harness.traffic.base import GeneratorError

    config = cfg.load(overrides=["generator.kind=trex", "generator.trex.server=builtin"])
    with pytest.raises(GeneratorError, match="latency_trace: that needs generator.kind: local"):
        make_generator(config, platform=None, run_dir=None, latency_trace=tmp_path / "t.bin")  # type: ignore


def test_the_standalone_server_says_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "harness.traffic.trex_server", "--vdev", "net_memif0",
                             "--rpc-port", "0", "--pub-port", "0", "--work-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cfg.REPO_ROOT)
    try:
        line = proc.stdout.readline()   # type: ignore[union-attr]
        assert re.fullmatch(r"READY rpc=\d+ pub=\d+\n", line), line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("args, match", [
    ([], "Missing option '--vdev'"),
    (["--vdev", "x", "--set", "generator.nope=1"], "unknown key 'generator.nope'"),
])
def test_bad_command_lines_are_one_clear_line(args: list[str], match: str) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "harness.traffic.trex_server", *args], capture_output=True,
                         text=True, cwd=cfg.REPO_ROOT, timeout=60)
    assert res.returncode != 0 and match in res.stderr and "Traceback" not in res.stderr
