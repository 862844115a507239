"""The paper-claims check (harness.claims, harness.evidence): verdicts from small synthetic CSVs and
sidecars, what counts as evidence (INVALID), strict loading of the claims file, the real
experiments/claims.yaml and its reworded claims, and `harness check-paper`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from harness import claims
from harness.claims import ClaimsError, Status
from harness.cli import main

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


def test_exit_code_is_non_zero_on_invalid_evidence() -> None:
    assert claims.exit_code([_verdict(Status.PASS), _verdict(Status.INVALID)]) != 0


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
    (("kind: ratio_bound, factor: 3, above: 1}", "kind: between, min: 3, max: 1}"), "check.min"),
    (("kind: ratio_bound, factor: 3, above: 1}", "kind: between, min: 3}"), "check.max"),
    (("    derive: ratio\n", "    derive: ratio\n    capacity: latency_mean_us\n"), "ours.capacity"),
    (("    derive: ratio\n", "    derive: ratio\n    also: [{metric: pdr_mpps, colour: red}]\n"),
     "ours.also[0].colour"),
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
                     "figure-13.csv", "figure-14.csv", "figure-14-summary.csv", "figure-15.csv"}


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


# ── what counts as evidence: zero, missing and generator-limited values ──────────────────────────────

AT_LEAST_CLAIM = """
- id: headline
  source: Abstract
  text: Serpens is more than 10x faster
  paper: {value: 10, unit: x, text: "> 10x"}
  ours:
    file: figure-15.csv
    metric: [ndr_mpps, throughput_mpps]
    derive: ratio
    of: {platform: serpens}
    over: {platform: fission}
  check: {kind: at_least, bound: 10}
"""


def test_a_zero_baseline_is_invalid_not_an_infinite_ratio(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-15.csv", [{"platform": "serpens", "trial": 0, "ndr_mpps": 2.0},
                                                {"platform": "fission", "trial": 0, "ndr_mpps": 0.0}])
    v = one(tmp_path / "r", write_claims(tmp_path, AT_LEAST_CLAIM))
    assert v.status is Status.INVALID, v.detail   # x/0 = ∞ used to PASS "at least 10×"
    assert "fission" in v.detail and "no load met the goal" in v.detail
    assert claims.exit_code([v]) != 0


def test_a_zero_latency_denominator_is_invalid(tmp_path: Path) -> None:
    body = """
    - id: lat
      source: Fig. 15(b)
      text: Serpens cuts latency by 97.4 %
      paper: {value: 97.4, unit: "%"}
      ours: {file: f.csv, metric: latency_mean_us, derive: reduction, of: {platform: serpens},
             over: {platform: fission}}
      check: {kind: ratio_bound, factor: 3, above: 0}
    """
    write_csv(tmp_path / "r", "f.csv", [{"platform": "serpens", "latency_mean_us": 10.0},
                                        {"platform": "fission", "latency_mean_us": 0.0}])
    v = one(tmp_path / "r", write_claims(tmp_path, body))
    assert v.status is Status.INVALID and "positive value" in v.detail


def test_headline_sfc_throughput_with_every_platform_at_ndr_zero_is_invalid(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-15.csv", [
        {"design": p, "workload": "fw,mon,nat", "trial": 0, "ndr_mpps": 0.0, "load_fraction": 0.8}
        for p in ("serpens", "fission", "snf", "sand")])
    v = check_real(tmp_path / "r", "headline-sfc-throughput")
    assert v.status is Status.INVALID, v.detail


def test_a_generator_limited_denominator_is_invalid(tmp_path: Path) -> None:
    rows = tput_rows(serpens=35.1, fission=1.0)
    for r in rows:
        r["ndr_generator_limited"] = r["platform"] == "fission"
    write_csv(tmp_path / "r", "figure-12.csv", rows)
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.INVALID
    assert "denominator, is generator-limited (ndr_generator_limited)" in v.detail


def test_an_older_csv_row_flag_makes_the_denominator_a_floor(tmp_path: Path) -> None:
    rows = tput_rows(serpens=35.1, fission=1.0)
    for r in rows:
        r["generator_limited"] = r["platform"] == "fission"
    write_csv(tmp_path / "r", "figure-12.csv", rows)
    assert one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM)).status is Status.INVALID


def test_the_goals_own_flag_wins_over_the_rows(tmp_path: Path) -> None:
    """generator_limited also covers a short latency trial; NDR is only a floor if its own goal says so."""
    rows = tput_rows(serpens=35.1, fission=1.0)
    for r in rows:
        r.update(generator_limited=True, ndr_generator_limited=False)
    write_csv(tmp_path / "r", "figure-12.csv", rows)
    assert one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM)).status is Status.PASS


@pytest.mark.parametrize(("claim", "ratio", "status"), [
    (AT_LEAST_CLAIM, 12.0, Status.PASS),      # a floor above the bound: the true ratio is higher still
    (AT_LEAST_CLAIM, 8.0, Status.INVALID),    # a floor below the bound says nothing
    (RATIO_CLAIM, 35.1, Status.INVALID),      # inside the factor, but the truth may be above its top
    (RATIO_CLAIM, 200.0, Status.FAIL),        # already above the factor's top: higher is worse
])
def test_a_generator_limited_numerator_makes_the_ratio_a_floor(tmp_path: Path, claim: str, ratio: float,
                                                               status: Status) -> None:
    name = "figure-15.csv" if claim is AT_LEAST_CLAIM else "figure-12.csv"
    rows = tput_rows(serpens=ratio, fission=1.0)
    for r in rows:
        r["ndr_generator_limited"] = r["platform"] == "serpens"
    write_csv(tmp_path / "r", name, rows)
    v = one(tmp_path / "r", write_claims(tmp_path, claim))
    assert v.status is status, v.detail
    assert "floor" in v.detail
    assert v.ours.startswith("≥")


def test_an_ordering_with_a_floor_is_judged_only_when_the_floor_decides_it(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, ORDERING_CLAIM.replace("latency_max_us", "ndr_mpps").replace("µs", "Mpps"))
    base = [{"platform": "opennf", "ndr_mpps": 9.0}, {"platform": "s6", "ndr_mpps": 5.0},
            {"platform": "serpens", "ndr_mpps": 1.0}]
    write_csv(tmp_path / "r", "figure-14.csv", [{**r, "generator_limited": r["platform"] == "opennf"}
                                                for r in base])
    assert one(tmp_path / "r", cf).status is Status.PASS      # opennf ≥ 9 > 5 holds whatever it truly is
    write_csv(tmp_path / "r", "figure-14.csv", [{**r, "generator_limited": r["platform"] == "s6"}
                                                for r in base])
    assert one(tmp_path / "r", cf).status is Status.INVALID   # s6 ≥ 5 may well exceed opennf's 9


def test_rows_measured_without_a_value_are_invalid_not_missing(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", [
        {"platform": "serpens", "workload": "fw", "trial": 0, "ndr_mpps": 3.5, "throughput_mpps": 3.5},
        {"platform": "fission", "workload": "fw", "trial": 0, "ndr_mpps": None, "throughput_mpps": None}])
    v = one(tmp_path / "r", write_claims(tmp_path, RATIO_CLAIM))
    assert v.status is Status.INVALID
    assert "measured without a value" in v.detail


# ── latency from lossy trials ─────────────────────────────────────────────────────────────────────────

LATENCY_CLAIM = """
- id: lat-vs-fission
  source: Fig. 12(b)
  text: Serpens cuts FW latency by 80.4 %
  paper: {value: 80.4, unit: "%"}
  ours:
    file: figure-12.csv
    metric: latency_mean_us
    derive: reduction
    of: {platform: serpens}
    over: {platform: fission}
  check: {kind: ratio_bound, factor: 3, above: 0}
"""


def latency_rows(fission_loss: list[float], *, valid: list[bool] | None = None) -> list[dict]:
    """Serpens 20 µs; Fission 100 µs (an 80 % reduction) with the given latency-trial losses."""
    rows = []
    for t, loss in enumerate(fission_loss):
        rows.append({"platform": "serpens", "trial": t, "latency_mean_us": 20.0, "latency_p50_us": 18.0,
                     "loss_ratio": 0.0})
        f = {"platform": "fission", "trial": t, "latency_mean_us": 100.0, "latency_p50_us": 95.0,
             "loss_ratio": loss}
        if valid is not None:
            rows[-1]["latency_trial_valid"] = True
            f["latency_trial_valid"] = valid[t]
        rows.append(f)
    return rows


def test_a_latency_from_a_trial_that_lost_more_than_the_pdr_goal_is_invalid(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", latency_rows([0.04], valid=[False]))
    v = one(tmp_path / "r", write_claims(tmp_path, LATENCY_CLAIM))
    assert v.status is Status.INVALID
    assert "lost 4 %, more than the PDR goal 0.1 %" in v.detail


def test_a_latency_trial_whose_generator_fell_short_is_invalid(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", latency_rows([0.0], valid=[False]))
    v = one(tmp_path / "r", write_claims(tmp_path, LATENCY_CLAIM))
    assert v.status is Status.INVALID and "did not reach its load" in v.detail


def test_an_older_csv_is_judged_by_loss_ratio_against_the_sidecars_pdr_goal(tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_csv(r, "figure-12.csv", latency_rows([0.004]))   # 0.4 % lost; no latency_trial_valid column
    cf = write_claims(tmp_path, LATENCY_CLAIM)
    assert one(r, cf).status is Status.INVALID              # no sidecar: the default PDR goal, 0.1 %
    write_sidecar(r, "figure-12.csv", config={"search": {"goals": {"pdr": {"loss_ratio": 0.005}}}})
    assert one(r, cf).status is Status.PASS                 # that run's own PDR goal was 0.5 %
    write_sidecar(r, "figure-12.csv", config={"search": {"pdr_loss": 0.001}})
    assert one(r, cf).status is Status.INVALID


def test_a_minority_of_lossy_trials_is_left_out_and_a_majority_invalidates(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, LATENCY_CLAIM)
    write_csv(tmp_path / "r", "figure-12.csv", latency_rows([0.0, 0.04, 0.0], valid=[True, False, True]))
    v = one(tmp_path / "r", cf)
    assert v.status is Status.PASS and "1 of 3 trials left out" in v.detail
    write_csv(tmp_path / "r", "figure-12.csv", latency_rows([0.04, 0.04, 0.0], valid=[False, False, True]))
    assert one(tmp_path / "r", cf).status is Status.INVALID


def test_the_p50_is_shown_next_to_a_mean_latency(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", latency_rows([0.0], valid=[True]))
    v = one(tmp_path / "r", write_claims(tmp_path, LATENCY_CLAIM))
    assert v.status is Status.PASS
    assert v.ours == "80 %; p50 81.1 %", v.ours   # 1 − 18/95
    assert "latency_p50_us, shown, not judged" in v.detail


# ── sidecars: marked runs, --strict ───────────────────────────────────────────────────────────────────

def write_sidecar(results: Path, csv_name: str, **fields: Any) -> None:
    """A sidecar as harness.results.ResultWriter writes it: complete, full, 3 repetitions, clean tree;
    ``fields`` override (None removes the key)."""
    doc: dict[str, Any] = {"run_id": "20240101-000000-x", "status": "complete", "quick": False,
                           "repetitions": 3, "git": {"revision": "abc", "dirty": False},
                           "config": {"measurement": {"repetitions": 3}}}
    doc.update(fields)
    doc = {k: v for k, v in doc.items() if v is not None}
    results.mkdir(parents=True, exist_ok=True)
    (results / csv_name).with_suffix(".json").write_text(json.dumps(doc))


def test_a_full_complete_clean_run_is_not_marked(tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_csv(r, "figure-12.csv", tput_rows(35.1, 1.0, trials=3))
    write_sidecar(r, "figure-12.csv")
    (v,) = claims.check(r, write_claims(tmp_path, RATIO_CLAIM), strict=True)
    assert v.status is Status.PASS and v.marks == ()
    assert v.evidence == ("figure-12.csv: run 20240101-000000-x, complete, full, 3 repetitions, clean tree, "
                          "PDR goal 0.1 % (default)",)


@pytest.mark.parametrize(("fields", "mark"), [
    ({"quick": True}, "quick"),
    ({"repetitions": 1}, "1 repetition"),
    ({"repetitions": None, "config": {"measurement": {"repetitions": 1}}}, "1 repetition"),
    ({"status": "interrupted"}, "status interrupted"),
    ({"status": "running"}, "status running"),
    ({"git": {"revision": "abc", "dirty": True}}, "dirty tree"),
])
def test_a_weak_run_is_marked_and_refused_under_strict(tmp_path: Path, fields: dict[str, Any],
                                                       mark: str) -> None:
    r = tmp_path / "r"
    write_csv(r, "figure-12.csv", tput_rows(35.1, 1.0, trials=3))
    write_sidecar(r, "figure-12.csv", **fields)
    cf = write_claims(tmp_path, RATIO_CLAIM)
    (v,) = claims.check(r, cf)
    assert v.status is Status.PASS and v.marks == (f"figure-12.csv: {mark}",)
    text = claims.render([v], width=160)
    assert "PASS*" in text and f"marked: {mark}" in text and "1 read marked runs (*)" in text
    (strict,) = claims.check(r, cf, strict=True)
    assert strict.status is Status.INVALID
    assert strict.detail.startswith(f"refused under --strict: figure-12.csv: {mark}")


def test_a_csv_without_a_readable_sidecar_is_marked(tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_csv(r, "figure-12.csv", tput_rows(35.1, 1.0))
    cf = write_claims(tmp_path, RATIO_CLAIM)
    (v,) = claims.check(r, cf)
    assert v.status is Status.PASS and v.marks == ("figure-12.csv: no sidecar",)
    (r / "figure-12.json").write_text("{not json")
    (v,) = claims.check(r, cf, strict=True)
    assert v.status is Status.INVALID and "unreadable sidecar" in v.detail


def test_a_sidecar_without_quick_is_shown_as_unknown_not_refused(tmp_path: Path) -> None:
    r = tmp_path / "r"
    write_csv(r, "figure-12.csv", tput_rows(35.1, 1.0, trials=3))
    write_sidecar(r, "figure-12.csv", quick=None)
    (v,) = claims.check(r, write_claims(tmp_path, RATIO_CLAIM), strict=True)
    assert v.status is Status.PASS and "quick ?" in v.evidence[0]


# ── throughput ratios: instance capacity and end to end ───────────────────────────────────────────────

def capacity_rows(*, fission_capacity: float | None = 0.3) -> list[dict]:
    """Fig. 12 FW: end to end Serpens is bounded by the shared core (2×); instance alone 33×."""
    rows = []
    for t in range(3):
        rows.append({"design": "serpens", "workload": "fw", "trial": t, "ndr_mpps": 2.0,
                     "instance_capacity_mpps": 10.0, "bottleneck": "core", "gateway_ns_per_packet": 250.0,
                     "instance_ns_per_packet": 100.0})
        rows.append({"design": "fission-state", "workload": "fw", "trial": t, "ndr_mpps": 1.0,
                     "instance_capacity_mpps": fission_capacity, "bottleneck": "instance",
                     "gateway_ns_per_packet": 250.0, "instance_ns_per_packet": 3333.0,
                     "remote_state_ns_per_packet": 3000.0})
    return rows


def test_a_fig12_throughput_ratio_is_judged_on_instance_capacity_with_both_reported(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", capacity_rows())
    v = check_real(tmp_path / "r", "fig12-fw-throughput-vs-fission")
    assert v.status is Status.PASS, v.detail
    assert v.values == (("", pytest.approx(33.33, rel=1e-3)),)
    assert v.ours == "33.3× instance capacity; 2× end to end"
    assert "end-to-end ratio (ndr_mpps): 2×, on its own FAIL" in v.detail
    assert ("serpens bounded by core [gateway_ns_per_packet 250, instance_ns_per_packet 100]; fission-state "
            "bounded by instance [gateway_ns_per_packet 250, instance_ns_per_packet 3333, "
            "remote_state_ns_per_packet 3000]") in v.detail
    text = claims.render([v], width=200)
    assert "Throughput ratios that passed" in text and "serpens bounded by core" in text


def test_without_capacity_on_every_side_the_end_to_end_ratio_is_judged(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-12.csv", capacity_rows(fission_capacity=None))
    v = check_real(tmp_path / "r", "fig12-fw-throughput-vs-fission")
    assert v.status is Status.FAIL
    assert "judged on the end-to-end ratio: instance_capacity_mpps is not measured on every side" in v.detail
    assert "serpens bounded by core" in v.detail


def test_every_fig12_and_fig15_throughput_ratio_has_a_capacity_counterpart() -> None:
    for c in claims.load_claims(REAL_CLAIMS):
        files = {s.file or c.ours.file for s in c.ours.selections()}
        throughput = {"ndr_mpps", "throughput_mpps"} & c.ours.metrics()
        if c.ours.derive == "ratio" and throughput and files & {"figure-12.csv", "figure-15.csv"}:
            assert c.ours.capacity == "instance_capacity_mpps", c.id


# ── the reworded claims: inside the paper's words passes, just outside fails ──────────────────────────

def real(claim_id: str) -> list[claims.Claim]:
    found = [c for c in claims.load_claims(REAL_CLAIMS) if c.id == claim_id]
    assert found, claim_id
    return found


def check_real(results: Path, claim_id: str, strict: bool = False) -> claims.Verdict:
    (v,) = claims.check_claims(real(claim_id), results, strict=strict)
    return v


@pytest.mark.parametrize(("reduction", "status"), [
    (70.5, Status.PASS), (75.0, Status.PASS), (79.5, Status.PASS),
    (69.5, Status.FAIL), (80.5, Status.FAIL),
    (25.0, Status.FAIL), (92.0, Status.FAIL),   # accepted before (a factor 3 around 75 %)
])
def test_fig11a_serpens_vs_load_is_about_75_percent(tmp_path: Path, reduction: float, status: Status) -> None:
    rows = []
    for n in (1, 10):
        rows += [{"mechanism": "load", "n_instances": n, "startup_p50_us": 100.0},
                 {"mechanism": "serpens", "n_instances": n, "startup_p50_us": 100.0 - reduction}]
    write_csv(tmp_path / "r", "figure-11a.csv", rows)
    v = check_real(tmp_path / "r", "fig11a-serpens-vs-load")
    assert v.status is status, v.detail


@pytest.mark.parametrize(("claim_id", "inside", "outside"), [
    ("fig13-throughput-vs-fission", (2.3, 2.5, 2.7), (2.2, 2.8, 1.1, 8.0)),
    ("fig13-throughput-vs-sand", (1.6, 2.1), (1.5, 2.2, 1.1, 6.0)),
])
def test_fig13_throughput_ratios_hold_the_papers_range(tmp_path: Path, claim_id: str,
                                                      inside: tuple[float, ...],
                                                      outside: tuple[float, ...]) -> None:
    base = "fission-chaining" if claim_id.endswith("fission") else "sand-chaining"
    for ratio, status in [(x, Status.PASS) for x in inside] + [(x, Status.FAIL) for x in outside]:
        rows = [{"design": p, "chain_length": n, "ndr_mpps": v}
                for n in (2, 4) for p, v in (("serpens", ratio), (base, 1.0))]
        write_csv(tmp_path / "r", "figure-13.csv", rows)
        assert check_real(tmp_path / "r", claim_id).status is status, (claim_id, ratio)


@pytest.mark.parametrize(("claim_id", "inside", "outside"), [
    ("fig13-latency-vs-fission", (48.4, 60.0, 75.0), (48.3, 75.1, 5.0)),
    ("fig13-latency-vs-sand", (9.6, 60.7), (9.5, 60.8, 1.0)),
])
def test_fig13_latency_reductions_hold_the_papers_range(tmp_path: Path, claim_id: str,
                                                        inside: tuple[float, ...],
                                                        outside: tuple[float, ...]) -> None:
    base = "fission-chaining" if claim_id.endswith("fission") else "sand-chaining"
    for red, status in [(x, Status.PASS) for x in inside] + [(x, Status.FAIL) for x in outside]:
        rows = [{"design": p, "chain_length": n, "load_fraction": 0.8, "latency_mean_us": v}
                for n in (2, 4) for p, v in (("serpens", 1000.0 - 10.0 * red), (base, 1000.0))]
        write_csv(tmp_path / "r", "figure-13.csv", rows)
        assert check_real(tmp_path / "r", claim_id).status is status, (claim_id, red)


@pytest.mark.parametrize(("ratio", "status"), [
    (7.8, Status.PASS), (8.0, Status.PASS), (8.4, Status.PASS),
    (7.4, Status.FAIL), (8.6, Status.FAIL), (2.0, Status.FAIL), (60.0, Status.FAIL),
])
def test_sec2_delivery_is_8_times_processing(tmp_path: Path, ratio: float, status: Status) -> None:
    write_csv(tmp_path / "r", "table-2.csv", [
        {"platform": "serpens", "workload": "fw", "trial": 0, "processing_us": 2.95},
        {"platform": "sand", "workload": "fw", "trial": 0, "delivery_us": 2.95 * ratio}])
    assert check_real(tmp_path / "r", "sec2-delivery-vs-processing").status is status


@pytest.mark.parametrize(("pauses", "status"), [
    ((8.0, 10.0, 14.0), Status.PASS),
    ((2.0, 14.5, 90.0), Status.PASS),     # usually short; the longest is shown, not judged
    ((14.0, 16.0, 17.0), Status.FAIL),
    ((50.0, 60.0, 90.0), Status.FAIL),    # passed before (≤ 100 µs)
])
def test_sec3d_split_pause_is_usually_about_10_us(tmp_path: Path, pauses: tuple[float, ...],
                                                  status: Status) -> None:
    # one row per start/stop round of one trial (experiments/figure_14.py), beside rows of other events
    write_csv(tmp_path / "r", "figure-14-summary.csv",
              [{"design": "serpens", "move": "split-pause", "trial": 0, "split_pause_us": p} for p in pauses]
              + [{"design": "serpens", "move": "out", "trial": 0, "split_pause_us": 500.0}])
    v = check_real(tmp_path / "r", "sec3d-split-pause")
    assert v.status is status, v.detail
    assert f"longest {claims._fmt(max(pauses))} µs" in v.ours


def test_fig14_is_judged_on_the_mean_latency_of_the_scaling_window_with_the_maximum_shown(
        tmp_path: Path) -> None:
    bins = [(58.0, 400.0), (61.0, 3000.0), (64.0, 500.0)]   # mean 61 µs; one 3 ms spike
    write_csv(tmp_path / "r", "figure-14.csv", [
        {"mechanism": "serpens", "move": "out", "phase": "window", "trial": t, "time_s": i,
         "latency_mean_us": m + t, "latency_p50_us": m, "latency_max_us": mx, "loss_ratio": 0.0}
        for t in range(3) for i, (m, mx) in enumerate(bins)]
        # bins outside the scale-out's window never count
        + [{"mechanism": "serpens", "move": mv, "phase": ph, "trial": 0, "time_s": 9,
            "latency_mean_us": 9000.0, "latency_p50_us": 9000.0, "latency_max_us": 9000.0, "loss_ratio": 0.0}
           for mv, ph in (("out", "before"), ("out", "after"), ("in", "window"))])
    v = check_real(tmp_path / "r", "fig14-serpens")
    assert v.status is Status.PASS, v.detail
    assert v.values == (("", pytest.approx(62.0)),)       # means 61, 62, 63 → median 62
    assert "max 3000 µs" in v.ours and "p50" in v.ours


@pytest.mark.parametrize(("mean_us", "status"), [
    (6.1, Status.PASS), (620.0, Status.PASS), (5.9, Status.FAIL), (640.0, Status.FAIL)])
def test_fig14_serpens_stays_within_an_order_of_magnitude_of_60_to_63_us(tmp_path: Path, mean_us: float,
                                                                         status: Status) -> None:
    write_csv(tmp_path / "r", "figure-14.csv", [{"mechanism": "serpens", "move": "out", "phase": "window",
                                                 "trial": 0, "latency_mean_us": mean_us,
                                                 "latency_max_us": 10 * mean_us}])
    assert check_real(tmp_path / "r", "fig14-serpens").status is status


# ── harness check-paper ───────────────────────────────────────────────────────────────────────────────

def test_check_paper_reads_the_results_dir_and_its_sidecars(tmp_path: Path) -> None:
    cf = write_claims(tmp_path, RATIO_CLAIM)
    full, quick = tmp_path / "full", tmp_path / "quick"
    for d, is_quick in ((full, False), (quick, True)):
        write_csv(d, "figure-12.csv", tput_rows(35.1, 1.0, trials=3))
        write_sidecar(d, "figure-12.csv", quick=is_quick)
    runner = CliRunner()
    ok = runner.invoke(main, ["check-paper", "--results", str(full), "--claims", str(cf), "--strict"])
    assert ok.exit_code == 0, ok.output
    assert f"results: {full}" in ok.output and "1 claims: 1 PASS" in ok.output
    refused = runner.invoke(main, ["check-paper", "--results", str(quick), "--claims", str(cf), "--strict"])
    assert refused.exit_code == 1 and "refused under --strict: figure-12.csv: quick" in refused.output
    marked = runner.invoke(main, ["check-paper", "--results", str(quick), "--claims", str(cf)])
    assert marked.exit_code == 0 and "PASS*" in marked.output


def test_check_paper_exits_non_zero_on_invalid(tmp_path: Path) -> None:
    write_csv(tmp_path / "r", "figure-15.csv", [{"platform": "serpens", "trial": 0, "ndr_mpps": 2.0},
                                                {"platform": "fission", "trial": 0, "ndr_mpps": 0.0}])
    got = CliRunner().invoke(main, ["check-paper", "--results", str(tmp_path / "r"), "--claims",
                                    str(write_claims(tmp_path, AT_LEAST_CLAIM))])
    assert got.exit_code == 1 and "INVALID" in got.output


def test_check_paper_with_a_missing_results_dir_says_so_in_one_line(tmp_path: Path) -> None:
    got = CliRunner().invoke(main, ["check-paper", "--results", str(tmp_path / "nope")])
    assert got.exit_code != 0
    assert got.output.strip() == f"Error: --results {tmp_path / 'nope'}: no such directory"
    assert got.exception is None or isinstance(got.exception, SystemExit)


def test_check_paper_against_the_real_claims_without_results_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    got = CliRunner().invoke(main, ["check-paper", "--results", str(tmp_path / "empty")])
    assert got.exit_code == 0, got.output   # nothing measured is not a failure
    n = len(claims.load_claims(REAL_CLAIMS))
    summary = f"{n} claims: 0 PASS, 0 FAIL, 0 INVALID, {n} NOT MEASURED, 0 INCOMPLETE"
    assert got.output.splitlines()[-1] == summary


def test_a_sweep_point_where_the_metric_is_undefined_is_left_out_not_invalid(tmp_path: Path) -> None:
    # figure-11b: memory per NF is a slope, undefined at the first number of deployed NFs
    rows = pd.DataFrame({"experiment": "figure-11b", "mechanism": "serpens", "n_nfs": [1, 50, 100],
                         "memory_mb": [10.0, 11.0, 12.0], "memory_per_nf_kb": [float("nan"), 20.0, 21.0]})
    rows.to_csv(tmp_path / "figure-11b.csv", index=False)
    from harness.config import repo_path
    (verdict,) = [v for v in claims.check(tmp_path, repo_path("experiments/claims.yaml"))
                  if v.claim_id == "fig11b-serpens-per-nf"]
    assert verdict.status is claims.Status.PASS, verdict.detail


def test_nat_claims_must_hold_with_both_flow_workloads_and_the_five_nf_mean_uses_the_fixed_flows(
        tmp_path: Path) -> None:
    design = {"serpens": "serpens", "fission": "fission-state"}   # Fig. 12's claims select designs
    rows = []
    for nf in ("fw", "mon", "nat", "ids", "vpn"):
        rows += [dict(r, flows_workload="fixed", design=design[r["platform"]])
                 for r in tput_rows(serpens=20.0, fission=1.0, workload=nf)]
    # with flows that keep arriving Serpens' NAT is no faster than Fission's: the NAT claim must fail
    rows += [dict(r, flows_workload="churn", design=design[r["platform"]])
             for r in tput_rows(serpens=1.0, fission=1.0, workload="nat")]
    write_csv(tmp_path / "r", "figure-12.csv", rows)
    verdicts = {v.claim_id: v for v in claims.check(tmp_path / "r", REAL_CLAIMS)}
    nat = verdicts["fig12-nat-throughput-vs-fission"]
    assert nat.status is Status.FAIL
    assert dict(nat.values) == {"flows_workload=churn": pytest.approx(1.0),
                                "flows_workload=fixed": pytest.approx(20.0)}
    headline = verdicts["headline-nf-throughput"]
    assert headline.status is Status.PASS and [v for _, v in headline.values] == [pytest.approx(20.0)]
    assert verdicts["fig12-mon-gains-most"].status is not Status.INCOMPLETE


@pytest.mark.parametrize("kind", ["fifo", "binary"])
def test_a_claims_file_that_is_not_text_is_one_line(tmp_path: Path, kind: str) -> None:
    import os

    from harness.claims_file import ClaimsError, load_claims
    path = tmp_path / "claims.yaml"
    if kind == "fifo":
        os.mkfifo(path)     # was read for ever
    else:
        path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ClaimsError) as err:
        load_claims(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
