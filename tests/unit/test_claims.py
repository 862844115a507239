"""The paper-claims check (harness.claims): verdicts from small synthetic CSVs, strict loading of the claims
file, and the real experiments/claims.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from harness import claims
from harness.claims import ClaimsError, Status

REPO = Path(__file__).resolve().parents[2]
REAL_CLAIMS = REPO / "experiments" / "claims.yaml"


def write_claims(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text("version: 1\nclaims:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return path


def write_csv(results: Path, name: str, rows: list[dict]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(results / name, index=False)


def one(results: Path, claims_file: Path) -> claims.Verdict:
    (verdict,) = claims.check(results, claims_file)
    return verdict


RATIO_CLAIM = """
- id: tput-vs-fission
  source: Fig. 12(a)
  text: Serpens is 35.1x Fission
  paper: {value: 35.1, unit: x}
  ours:
    file: figure-12.csv
    metric: [ndr_mpps, throughput_mpps]
    where: {workload: fw}
    derive: ratio
    of: {platform: serpens}
    over: {platform: fission}
  check: {kind: ratio_bound, factor: 3, above: 1}
"""


def tput_rows(serpens: float, fission: float, *, trials: int = 1, workload: str = "fw") -> list[dict]:
    """Serpens and Fission throughput rows for one workload."""
    rows = []
    for t in range(trials):
        rows.append({"platform": "serpens", "workload": workload, "trial": t, "ndr_mpps": serpens})
        rows.append({"platform": "fission", "workload": workload, "trial": t, "ndr_mpps": fission})
    return rows


# ── ratio_bound ───────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize(("ratio", "status"), [
    (35.1, Status.PASS),
    (35.1 / 3 * 1.01, Status.PASS),   # just inside the factor 3 below
    (35.1 / 3 * 0.99, Status.FAIL),   # just outside
    (35.1 * 3 * 0.99, Status.PASS),
    (35.1 * 3 * 1.01, Status.FAIL),
])
def test_ratio_claim_passes_inside_its_factor_and_fails_outside(tmp_path: Path, ratio: float,
                                                                status: Status) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(serpens=ratio, fission=1.0))
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is status, v.detail
    assert v.values[0][1] == pytest.approx(ratio)


def test_ratio_claim_fails_when_serpens_is_not_faster_even_with_a_wide_factor(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, RATIO_CLAIM.replace("factor: 3", "factor: 100"))
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(serpens=1.0, fission=1.0))
    v = one(tmp_path / "r", cf)
    assert v.status is Status.FAIL
    assert "not above" in v.detail


def test_reduction_tolerance_applies_to_times_lower(tmp_path: Path) -> None:
    body = """
    - id: lat
      source: Fig. 15(b)
      text: Serpens cuts latency by 97.4 %
      paper: {value: 97.4, unit: "%"}
      ours:
        file: figure-15.csv
        metric: latency_mean_us
        derive: reduction
        of: {platform: serpens}
        over: {platform: fission}
      check: {kind: ratio_bound, factor: 3, above: 0}
    """
    cf = write_claims(tmp_path, body)
    # 97.4 % is 38.5× lower; a factor 3 accepts 12.8×…115× lower, i.e. about 92.2 %…99.1 %.
    for fission_us, status in ((10 * 15, Status.PASS), (10 * 11, Status.FAIL), (10 * 120, Status.FAIL)):
        write_csv(tmp_path / "r", "figure-15.csv", [
            {"platform": "serpens", "latency_mean_us": 10.0},
            {"platform": "fission", "latency_mean_us": float(fission_us)}])
        assert one(tmp_path / "r", cf).status is status, fission_us


def test_fallback_metric_is_used_when_the_first_has_no_values(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", [
        {"platform": "serpens", "workload": "fw", "throughput_mpps": 3.51},
        {"platform": "fission", "workload": "fw", "throughput_mpps": 0.1}])
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.PASS
    assert "throughput_mpps" in v.detail


# ── medians, grouping, units ──────────────────────────────────────────────────────────────────────────

def test_trials_are_aggregated_by_median_not_mean(tmp_path: Path) -> None:
    rows = [{"platform": "serpens", "workload": "fw", "trial": t, "ndr_mpps": v} for t, v in
            enumerate([35.0, 36.0, 1000.0])]  # mean 357 would fail the factor 3; median 36 passes
    rows += [{"platform": "fission", "workload": "fw", "trial": t, "ndr_mpps": 1.0} for t in range(3)]
    write_csv(tmp_path / "r", "figure-12.csv", rows)
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.PASS
    assert v.values == (("", pytest.approx(36.0)),)


def test_peak_within_a_trial_then_median_over_trials(tmp_path: Path) -> None:
    body = """
    - id: peak
      source: Fig. 14
      text: Serpens' latency during scaling is 60-63 us
      paper: {min: 60, max: 63, unit: µs}
      ours:
        file: figure-14.csv
        metric: latency_max_us
        within_trial: max
        derive: value
        of: {platform: serpens}
      check: {kind: order_of_magnitude, decades: 1}
    """
    rows = [{"platform": "serpens", "trial": t, "time_s": s, "latency_max_us": 10.0 + 50.0 * (s == 2) + t}
            for t in range(3) for s in range(4)]
    write_csv(tmp_path / "r", "figure-14.csv", rows)
    v = one(tmp_path / "r", write_claims(tmp_path, body))
    assert v.values == (("", pytest.approx(61.0)),)  # peaks 60, 61, 62 → median 61


def test_a_varying_identity_column_is_never_pooled(tmp_path: Path) -> None:
    rows = tput_rows(serpens=35.1, fission=1.0)
    for r in rows:
        r["frame_size_b"] = 64
    big = tput_rows(serpens=1.0, fission=1.0)  # at 1518 B Serpens is no faster
    for r in big:
        r["frame_size_b"] = 1518
    write_csv(tmp_path / "r", "figure-12.csv", rows + big)
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.FAIL
    assert "frame_size_b=1518" in v.detail
    assert dict(v.values) == {"frame_size_b=64": pytest.approx(35.1), "frame_size_b=1518": pytest.approx(1.0)}


def test_values_are_converted_to_the_papers_unit(tmp_path: Path) -> None:
    body = """
    - id: kpps
      source: Sec. II
      text: Fission SFC reaches 82 Kpps
      paper: {value: 82, unit: Kpps}
      ours: {file: figure-15.csv, metric: ndr_mpps, derive: value, of: {platform: fission}}
      check: {kind: order_of_magnitude, decades: 1}
    """
    write_csv(tmp_path / "r", "figure-15.csv", [{"platform": "fission", "ndr_mpps": 0.05}])
    v = one(tmp_path / "r", write_claims(tmp_path, body))
    assert v.status is Status.PASS
    assert v.values[0][1] == pytest.approx(50.0)
    assert v.ours == "50 Kpps"


def test_order_of_magnitude_bounds(tmp_path: Path) -> None:
    body = """
    - id: oom
      source: Fig. 15
      text: 2.4 Mpps
      paper: {value: 2.4, unit: Mpps}
      ours: {file: f.csv, metric: ndr_mpps, derive: value, of: {platform: serpens}}
      check: {kind: order_of_magnitude, decades: 1}
    """
    cf = write_claims(tmp_path, body)
    for value, status in ((0.25, Status.PASS), (0.23, Status.FAIL), (23.0, Status.PASS), (25.0, Status.FAIL)):
        write_csv(tmp_path / "r", "f.csv", [{"platform": "serpens", "ndr_mpps": value}])
        assert one(tmp_path / "r", cf).status is status, value


# ── ordering and largest ──────────────────────────────────────────────────────────────────────────────

ORDERING_CLAIM = """
- id: order
  source: Fig. 14
  text: OpenNF > S6 > Serpens
  paper: {unit: µs, text: "OpenNF > S6 > Serpens"}
  ours:
    file: figure-14.csv
    metric: latency_max_us
    derive: each
    items: [{platform: opennf}, {platform: s6}, {platform: serpens}]
  check: {kind: ordering, direction: descending}
"""


def test_ordering_claim_passes_when_ordered_and_fails_when_not(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, ORDERING_CLAIM)
    write_csv(tmp_path / "r", "figure-14.csv", [
        {"platform": "opennf", "latency_max_us": 140e3}, {"platform": "s6", "latency_max_us": 1.7e3},
        {"platform": "serpens", "latency_max_us": 61.0}])
    assert one(tmp_path / "r", cf).status is Status.PASS
    write_csv(tmp_path / "r", "figure-14.csv", [
        {"platform": "opennf", "latency_max_us": 140e3}, {"platform": "s6", "latency_max_us": 50.0},
        {"platform": "serpens", "latency_max_us": 61.0}])
    v = one(tmp_path / "r", cf)
    assert v.status is Status.FAIL
    assert "s6" in v.detail and "serpens" in v.detail


def test_ordering_with_a_missing_item_is_incomplete_unless_already_violated(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, ORDERING_CLAIM)
    write_csv(tmp_path / "r", "figure-14.csv", [
        {"platform": "opennf", "latency_max_us": 140e3}, {"platform": "serpens", "latency_max_us": 61.0}])
    assert one(tmp_path / "r", cf).status is Status.INCOMPLETE
    write_csv(tmp_path / "r", "figure-14.csv", [
        {"platform": "opennf", "latency_max_us": 10.0}, {"platform": "serpens", "latency_max_us": 61.0}])
    assert one(tmp_path / "r", cf).status is Status.FAIL


def test_ordering_holds_at_every_group(tmp_path: Path) -> None:
    body = """
    - id: chain
      source: Fig. 13
      text: Serpens > SAND at every chain length
      paper: {unit: Mpps, text: Serpens > SAND}
      ours:
        file: figure-13.csv
        metric: ndr_mpps
        group_by: chain_length
        derive: each
        items: [{platform: serpens}, {platform: sand}]
      check: {kind: ordering}
    """
    rows = [{"platform": p, "chain_length": n, "ndr_mpps": v}
            for n in (1, 2, 3) for p, v in (("serpens", 5.0), ("sand", 2.0 if n < 3 else 6.0))]
    write_csv(tmp_path / "r", "figure-13.csv", rows)
    v = one(tmp_path / "r", write_claims(tmp_path, body))
    assert v.status is Status.FAIL
    assert "chain_length=3" in v.detail and "chain_length=1" not in v.detail.split("check:")[0]


def fw_mon(fw: float, mon: float) -> list[dict]:
    return tput_rows(fw, 1.0, workload="fw") + tput_rows(mon, 1.0, workload="mon")


def test_largest_group(tmp_path: Path) -> None:
    body = """
    - id: mon-most
      source: Fig. 12
      text: MON gains the most
      paper: {unit: x, text: MON largest}
      ours:
        file: figure-12.csv
        metric: ndr_mpps
        where: {workload: [fw, mon]}
        group_by: workload
        derive: ratio
        of: {platform: serpens}
        over: {platform: fission}
      check: {kind: largest, group: mon}
    """
    cf = write_claims(tmp_path, body)
    write_csv(tmp_path / "r", "figure-12.csv", fw_mon(fw=35.0, mon=48.0))
    assert one(tmp_path / "r", cf).status is Status.PASS
    write_csv(tmp_path / "r", "figure-12.csv", fw_mon(fw=50.0, mon=48.0))
    assert one(tmp_path / "r", cf).status is Status.FAIL
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(48.0, 1.0, workload="mon"))
    assert one(tmp_path / "r", cf).status is Status.INCOMPLETE  # fw, listed in where, is missing


def test_combined_groups_are_judged_only_when_every_group_is_there(tmp_path: Path) -> None:
    body = """
    - id: gmean
      source: headline
      text: more than 10x on average
      paper: {value: 10, unit: x, text: "> 10x"}
      ours:
        file: figure-12.csv
        metric: ndr_mpps
        where: {workload: [fw, ids]}
        group_by: workload
        across: gmean
        derive: ratio
        of: {platform: serpens}
        over: {platform: fission}
      check: {kind: at_least, bound: 10}
    """
    cf = write_claims(tmp_path, body)
    write_csv(tmp_path / "r", "figure-12.csv", \
              tput_rows(40.0, 1.0, workload="fw") + tput_rows(4.0, 1.0, workload="ids"))
    v = one(tmp_path / "r", cf)
    assert v.status is Status.PASS and v.values[0][1] == pytest.approx(12.65, rel=1e-3)  # sqrt(40 · 4)
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(4.0, 1.0, workload="ids"))
    assert one(tmp_path / "r", cf).status is Status.INCOMPLETE


# ── NOT MEASURED / INCOMPLETE ─────────────────────────────────────────────────────────────────────────

def test_not_measured_when_the_csv_is_missing(tmp_path: Path) -> None:
    v = one(tmp_path / "empty", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.NOT_MEASURED
    assert "figure-12.csv" in v.detail
    assert v.ours == "—"


def test_not_measured_when_no_rows_match(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(35.0, 1.0, workload="nat"))
    assert one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM)).status is Status.NOT_MEASURED


def test_not_measured_when_a_filtered_column_is_absent(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", [{"platform": "serpens", "ndr_mpps": 1.0}])
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.NOT_MEASURED
    assert "workload" in v.detail


def test_incomplete_when_only_one_side_of_a_ratio_is_measured(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", [{"platform": "serpens", "workload": "fw", "ndr_mpps": 3.0}])
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.INCOMPLETE
    assert "fission" in v.detail


# ── exit code and rendering ───────────────────────────────────────────────────────────────────────────

def _verdict(status: Status) -> claims.Verdict:
    return claims.Verdict("c", "src", "text", "1×", "1×", status, "")


def test_exit_code_is_zero_without_failures_and_non_zero_with_one() -> None:
    ok = [_verdict(Status.PASS), _verdict(Status.NOT_MEASURED), _verdict(Status.INCOMPLETE)]
    assert claims.exit_code(ok) == 0
    assert claims.exit_code([]) == 0
    assert claims.exit_code([*ok, _verdict(Status.FAIL)]) != 0


def test_render_is_a_plain_table_with_both_values_and_the_verdict(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", tput_rows(serpens=1.0, fission=1.0))
    text = claims.render(claims.check(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM)), width=120)
    assert "tput-vs-fission" in text and "35.1×" in text and "1×" in text and "FAIL" in text
    assert "\x1b[" not in text  # no terminal escapes
    assert text.splitlines()[-1].startswith("1 claims: 0 PASS, 1 FAIL")


# ── strict loading ────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize(("mutation", "key"), [
    (("factor: 3, above: 1}", "factr: 3}"), "check.factr"),
    (("  source: Fig. 12(a)\n", ""), "source"),
    (("kind: ratio_bound", "kind: roughly"), "check.kind"),
    (("derive: ratio", "derive: quotient"), "ours.derive"),
    (("of: {platform: serpens}", "of: {platfrom: serpens}"), "ours.of.platfrom"),
    (("metric: [ndr_mpps, throughput_mpps]", "metric: ndr"), "ours.metric"),
    (("paper: {value: 35.1, unit: x}", "paper: {value: 35.1, unit: furlongs}"), "paper.unit"),
    (("paper: {value: 35.1, unit: x}", "paper: {value: 35.1, unit: \"%\"}"), "paper.unit"),
    (("over: {platform: fission}", "over: {platform: fission}\n    items: [{platform: a}]"), "ours.items"),
    (("  text: Serpens is 35.1x Fission\n", "  text: Serpens is 35.1x Fission\n  colour: red\n"), "colour"),
])
def test_malformed_claim_names_file_claim_and_key(tmp_path: Path, mutation: tuple[str, str],
                                                  key: str) -> None:
    old, new = mutation
    assert old in RATIO_CLAIM
    cf = write_claims(tmp_path, RATIO_CLAIM.replace(old, new))
    with pytest.raises(ClaimsError) as err:
        claims.check(tmp_path, cf)
    msg = str(err.value)
    assert str(cf) in msg and "'tput-vs-fission'" in msg and f"key '{key}'" in msg, msg


def test_duplicate_yaml_keys_and_claim_ids_are_errors(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, RATIO_CLAIM.replace("  source: Fig. 12(a)\n", "  source: a\n  source: b\n"))
    with pytest.raises(ClaimsError, match="duplicate key 'source'"):
        claims.load_claims(cf)
    cf = write_claims(tmp_path, RATIO_CLAIM + RATIO_CLAIM)
    with pytest.raises(ClaimsError, match=r"claim 'tput-vs-fission': key 'id': duplicate"):
        claims.load_claims(cf)


def test_a_claim_without_id_is_named_by_its_position(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, RATIO_CLAIM.replace("- id: tput-vs-fission\n  source", "- source"))
    with pytest.raises(ClaimsError, match=r"claim #1 \(no id\): key 'id': missing"):
        claims.load_claims(cf)


def test_claims_error_is_a_value_error_for_the_cli(tmp_path: Path) -> None:
    assert issubclass(ClaimsError, ValueError)
    with pytest.raises(ValueError, match="not valid YAML"):
        claims.load_claims(write_claims(tmp_path, "- id: [unclosed\n"))


# ── the real claims file ──────────────────────────────────────────────────────────────────────────────

def test_real_claims_file_loads_and_every_claim_renders_not_measured_without_results(tmp_path: Path) -> None:
    loaded = claims.load_claims(REAL_CLAIMS)
    assert len(loaded) >= 60
    verdicts = claims.check(tmp_path / "no-results", REAL_CLAIMS)
    assert [v.claim_id for v in verdicts] == [c.id for c in loaded]
    assert {v.status for v in verdicts} == {Status.NOT_MEASURED}
    assert claims.exit_code(verdicts) == 0
    text = claims.render(verdicts)
    for c in loaded:
        assert c.id in text


def test_real_claims_cover_every_figure_and_table_of_the_paper() -> None:
    files = set(claims.required_columns(claims.load_claims(REAL_CLAIMS)))
    assert files == {"table-2.csv", "table-4.csv", "figure-11a.csv", "figure-11b.csv", "figure-12.csv",
                     "figure-13.csv", "figure-14.csv", "figure-15.csv"}


def test_real_claims_read_only_columns_of_the_results_schema() -> None:
    from harness.results import COLUMNS
    assert set(claims.IDENTITY_COLUMNS) <= set(COLUMNS)
    used = set().union(*claims.required_columns(claims.load_claims(REAL_CLAIMS)).values())
    # split_pause_us (Sec. III-D's 10 µs pause) is read from figure-14.csv once that experiment writes it.
    assert used - set(COLUMNS) <= {"split_pause_us"}


def test_docs_describe_the_columns_the_claims_read() -> None:
    docs = (REPO / "docs" / "claims.md").read_text(encoding="utf-8")
    for file, cols in claims.required_columns(claims.load_claims(REAL_CLAIMS)).items():
        assert file in docs
        for col in cols:
            assert col in docs, (file, col)
