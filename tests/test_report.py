"""report.md / report.html / plot from a hand-made leaderboard."""
from __future__ import annotations

import re
from itertools import combinations
from xml.etree import ElementTree

import pytest

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.report import chart
from bertdistill.report.findings import (
    ensemble_findings,
    int8_findings,
    neural_findings,
    static_findings,
    student_findings,
    twin_findings,
)
from bertdistill.report.formats import fixed, signed, significant
from bertdistill.report.markdown import (
    COLUMNS,
    markdown_table,
    table_rows,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def entry(name, role, score, p50, twin=None, gain=None, kind=None):
    family = role if role in ("teacher", "ensemble") else "tfidf" if name.startswith("tfidf") else "neural"
    return {
        "name": name, "role": role, "kind": kind or name, "twin": twin, "family": family,
        "metrics": {"macro_f1": score, "accuracy": score + 0.01,
                    "per_class_f1": {"a": score, "b": score}},
        "val_score": score, "fidelity": {"agreement": 0.9 if role != "teacher" else 1.0, "cosine": 0.95},
        "latency_ms": {"p50": p50, "p95": 2 * p50, "mean": 1.5 * p50, "n": 200},
        "throughput_per_s": 1000 / p50, "size_bytes": 12_345_678, "n_params": 1_234_567,
        "hyperparameters": None, "thresholds": None, "speedup_vs_teacher": 20.0 / p50, "gain_vs_twin": gain,
    }


@pytest.fixture()
def run_dir(tmp_path):
    entries = [
        entry("tfidf-lr", "baseline", 0.7200, 0.5),
        entry("teacher", "teacher", 0.8100, 20.0),
        entry("tfidf-soft-lr", "distilled", 0.7434, 0.5, twin="tfidf-lr", gain=0.0234),
        entry("tfidf-logit-ridge", "distilled", 0.7050, 0.4, twin="tfidf-lr", gain=-0.0150),
        entry("<b>odd & name</b>", "baseline", 0.5, 1.0),
    ]
    files.write_json(tmp_path / "leaderboard.json", entries)
    files.write_json(tmp_path / "environment.json", {
        "date": "2024-01-02 03:04 UTC", "machine": "x86_64 Test CPU, 2 cores", "python": "3.11.0", "threads": 1,
        "versions": {"torch": "2.x", "scikit-learn": "1.x"}})
    files.write_json(tmp_path / "dataset.json", {"name": "tweeteval-test", "task": "multiclass",
                                              "label_names": ["a", "b"], "rows": {"train": 10, "val": 5, "test": 5}})
    return tmp_path


def test_write_report_writes_markdown_html_and_png(run_dir):
    assert write_report(run_dir, "macro_f1") == run_dir / "report.md"
    for name in ("report.md", "report.html", "quality_vs_latency.png"):
        assert (run_dir / name).stat().st_size > 0
    assert (run_dir / "quality_vs_latency.png").read_bytes().startswith(PNG_MAGIC)
    assert not list(run_dir.glob(".*.tmp"))


def test_findings_state_signed_gain_over_the_twin(run_dir):
    write_report(run_dir, "macro_f1")
    markdown = (run_dir / "report.md").read_text()
    assert ("Distilled `tfidf-soft-lr` beats its hard-label twin `tfidf-lr`: +2.34 points of test macro_f1 "
            "(74.34 vs 72.00).") in markdown
    assert ("Distilled `tfidf-logit-ridge` trails its hard-label twin `tfidf-lr`: -1.50 points of test "
            "macro_f1 (70.50 vs 72.00).") in markdown
    assert markdown.count("beats its hard-label twin") == 1


def test_findings_only_for_students_with_a_twin():
    entries = [entry("teacher", "teacher", 0.8, 10.0), entry("b", "baseline", 0.7, 1.0),
               entry("d", "distilled", 0.7, 1.0, twin="b", gain=0.0)]
    lines = twin_findings(entries, "macro_f1")
    assert len(lines) == 1
    assert "`d` does not beat" in lines[0] and "+0.00 points" in lines[0]
    assert "What to try: more texts for the teacher to label" in lines[0]


def test_a_student_that_trails_a_twin_as_good_as_the_teacher_is_told_to_get_a_stronger_teacher():
    entries = [entry("teacher", "teacher", 0.705, 10.0), entry("b", "baseline", 0.70, 1.0),
               entry("d", "distilled", 0.69, 1.0, twin="b", gain=-0.01),
               entry("e", "distilled", 0.72, 1.0, twin="b", gain=0.02)]
    lines = twin_findings(entries, "macro_f1")
    assert "not 1.00 points above the twin (70.50): try a stronger teacher first" in lines[0]
    assert "beats" in lines[1] and "try" not in lines[1]  # no advice for a student that beats its twin


def test_neural_target_takes_the_best_distilled_neural_student_within_a_twentieth_of_the_teacher():
    teacher = entry("teacher", "teacher", 0.80, 10.0)
    entries = [teacher, entry("tfidf-soft-lr", "distilled", 0.79, 0.1),  # linear: not a neural student
               entry("minibert-kd", "distilled", 0.79, 2.0),  # the best, but too slow
               entry("minibert-kd-int8", "distilled", 0.78, 0.5), entry("cnn-kd", "distilled", 0.77, 0.4),
               entry("cnn", "baseline", 0.79, 0.3)]  # a baseline, not distilled
    (line,) = neural_findings(entries, "macro_f1", teacher)
    assert "`minibert-kd-int8`, 78.00 test macro_f1 = 97.5% of the teacher's, at p50 0.500 ms = 1/20" in line
    assert line.endswith("target met).")
    entries[3]["metrics"]["macro_f1"] = 0.7
    assert "`cnn-kd`" in neural_findings(entries, "macro_f1", teacher)[0]
    assert neural_findings(entries, "macro_f1", teacher)[0].endswith("target NOT met).")
    (none,) = neural_findings([teacher, entry("cnn-kd", "distilled", 0.79, 0.6)], "macro_f1", teacher)
    assert "No distilled neural student runs within 0.500 ms" in none and "`cnn-kd`, takes 0.600 ms" in none
    assert neural_findings([teacher, entry("tfidf-lr", "baseline", 0.7, 0.1)], "macro_f1", teacher) == []


def test_best_single_student_is_judged_within_a_hundredth_of_the_teacher():
    teacher = entry("teacher", "teacher", 0.80, 100.0)
    entries = [entry("minibert-kd", "distilled", 0.79, 2.0),  # the best, but over the 1 ms budget
               entry("cnn-kd", "distilled", 0.777, 1.0), entry("tfidf-lr", "baseline", 0.70, 0.1)]
    anywhere, within = student_findings(entries, "macro_f1", teacher)
    assert anywhere.startswith("Best single student `minibert-kd`: 79.00 test macro_f1 = 98.8%")
    assert within == ("Best single student within 1/100 of the teacher's latency: `cnn-kd`, 77.70 test macro_f1 = "
                      "97.1% of the teacher's, at p50 1.00 ms = 1/100 of its (target >= 97% of the teacher at "
                      "<= 1/100 of its latency: target met).")
    entries[1]["latency_ms"]["p50"] = 1.01
    assert "`tfidf-lr`, 70.00" in student_findings(entries, "macro_f1", teacher)[1]
    assert student_findings(entries, "macro_f1", teacher)[1].endswith("target NOT met).")


def test_the_best_distilled_int8_student_within_a_twentieth_is_held_to_99_percent():
    teacher = entry("teacher", "teacher", 0.80, 10.0)
    int8 = {**entry("minibert-kd-int8", "distilled", 0.785, 0.5), "derived_from": "minibert-kd"}
    entries = [teacher, entry("minibert-kd", "distilled", 0.79, 0.4), int8]
    neural, well_read = neural_findings(entries, "macro_f1", teacher)
    assert "`minibert-kd`, 79.00 test macro_f1 = 98.8%" in neural and neural.endswith("target met).")
    assert well_read == ("Best distilled int8 neural student within 1/20 of the teacher's latency: "
                         "`minibert-kd-int8`, 78.50 test macro_f1 = 98.1% of the teacher's, at p50 0.500 ms = 1/20 "
                         "of its (target >= 99% of the teacher at <= 1/20 of its latency: target NOT met).")
    int8["metrics"]["macro_f1"] = 0.792
    assert neural_findings(entries, "macro_f1", teacher)[1].endswith("target met).")
    int8["latency_ms"]["p50"] = 0.6
    assert neural_findings(entries, "macro_f1", teacher)[1].startswith(
        "No distilled int8 neural student runs within 0.500 ms (1/20 of the teacher's p50); the fastest, "
        "`minibert-kd-int8`, takes 0.600 ms")


@pytest.mark.parametrize("static_score, static_p50, met", [
    (0.76, 0.030, True), (0.759, 0.030, False),  # 3 points over fastText, or just under
    (0.76, 0.041, False),  # slower than fastText
    (0.76, 0.060, False)])  # over 0.05 ms (fastText slower still)
def test_static_kd_is_judged_against_the_fasttext_library(static_score, static_p50, met):
    fasttext = entry("fasttext-lib", "baseline", 0.73, 0.040 if static_p50 < 0.06 else 0.07)
    by_name = {"static-kd": entry("static-kd", "distilled", static_score, static_p50), "fasttext-lib": fasttext}
    (line,) = static_findings(by_name, "macro_f1")
    assert line.startswith("`static-kd` against `fasttext-lib` (the fastText library on gold labels): ")
    assert line.endswith(f"(target >= +3.00 points at no more latency and p50 <= 0.0500 ms: "
                         f"{'target met' if met else 'target NOT met'}).")
    assert static_findings({"static-kd": by_name["static-kd"]}, "macro_f1") == []


def test_an_ensemble_is_held_to_99_percent_of_the_teacher_within_a_hundredth():
    teacher = entry("teacher", "teacher", 0.80, 100.0)
    ens = {**entry("ens", "ensemble", 0.792, 1.0), "hyperparameters": {"weights": {"a": 0.5, "b": 0.5}}}
    (line,) = ensemble_findings([teacher, ens], "macro_f1", teacher)
    assert "79.20 test macro_f1, -0.80 points vs the teacher (99.0% of its score)" in line
    assert line.endswith("Target >= 99% of the teacher's score at <= 1/100 of the latency: target met.")
    ens["latency_ms"]["p50"] = 1.01
    assert ensemble_findings([teacher, ens], "macro_f1", teacher)[0].endswith("target NOT met.")


def test_int8_findings_compare_with_the_fp32_source():
    int8 = {**entry("minibert-kd-int8", "distilled", 0.775, 0.8), "derived_from": "minibert-kd"}
    by_name = {e["name"]: e for e in [entry("minibert-kd", "distilled", 0.785, 2.0), int8]}
    assert int8_findings(by_name, "macro_f1") == [
        "Int8 `minibert-kd-int8`: 77.50 test macro_f1 vs 78.50 for the fp32 `minibert-kd` (-1.00 points), "
        "p50 0.800 vs 2.00 ms (2.50x faster)."]


def test_markdown_table_teacher_first_then_best_metric(run_dir):
    entries = files.read_json(run_dir / "leaderboard.json")
    rows = table_rows(entries, "macro_f1")
    assert [row[0] for row in rows] == ["teacher", "tfidf-soft-lr", "tfidf-lr", "tfidf-logit-ridge",
                                        "<b>odd & name</b>"]
    soft = rows[1]
    assert soft[2] == "74.34" and soft[3] == "+2.34 vs tfidf-lr"
    assert rows[3][3] == "-1.50 vs tfidf-lr"
    assert rows[0][3] == ""  # no twin for the teacher
    column = {name: i for i, name in enumerate(COLUMNS)}
    assert soft[column["speed-up"]] == "40.0x" and soft[column["size MB"]] == "12.3"
    assert soft[column["params"]] == "1,234,567"
    assert soft[column["vs ONNX"]] == soft[column["KL"]] == ""  # older leaderboards lack these: left blank
    table = markdown_table(entries, "macro_f1").splitlines()
    assert "macro_f1" in table[0] and "{metric}" not in table[0]
    assert len(table) == 2 + len(entries)
    assert all(line.count("|") == table[0].count("|") for line in table)


def test_report_context_quotes_dataset_and_environment(run_dir):
    write_report(run_dir, "macro_f1")
    markdown = (run_dir / "report.md").read_text()
    assert markdown.startswith("# bertdistill report: tweeteval-test")
    for fragment in ("2024-01-02 03:04 UTC", "x86_64 Test CPU, 2 cores", "1 thread(s)", "multiclass",
                     "![quality vs latency](quality_vs_latency.png)"):
        assert fragment in markdown


def test_html_is_the_markdown_rendered_escaped_with_the_chart_inline(run_dir):
    write_report(run_dir, "macro_f1")
    page = (run_dir / "report.html").read_text()
    assert "&lt;b&gt;odd &amp; name&lt;/b&gt;" in page
    assert "<b>odd" not in page
    assert page.count("<tr>") == 1 + 5
    assert "beats its hard-label twin" in page
    assert "<code>tfidf-soft-lr</code>" in page and "`" not in page  # Markdown code spans, rendered
    svg = re.search(r"<svg.*?</svg>", page, re.DOTALL).group(0)
    groups = ElementTree.fromstring(svg).findall(".//{http://www.w3.org/2000/svg}g[@class='point']")
    assert len(groups) == 5 and all(g.find("{http://www.w3.org/2000/svg}title").text for g in groups)


def test_report_without_leaderboard_is_a_bertdistill_error(tmp_path):
    with pytest.raises(BertdistillError, match="bertdistill evaluate"):
        write_report(tmp_path, "macro_f1")


def test_pareto_front_known_answer():
    from bertdistill.report.chart import pareto_front

    # (latency, quality): b is beaten by a (faster and better), d by c
    points = [(1.0, 70.0), (2.0, 65.0), (5.0, 80.0), (6.0, 79.0), (0.5, 60.0)]
    assert pareto_front(points) == [4, 0, 2]


@pytest.fixture()
def full_run_dir(run_dir):
    """The run directory of a complete evaluation: ONNX teacher rows, an ensemble, diagnostics, seeds."""
    entries = files.read_json(run_dir / "leaderboard.json")[:4]
    onnx = entry("teacher-onnx", "teacher", 0.81, 12.0, kind="onnx-fp32")
    int8 = {**entry("teacher-onnx-int8", "teacher", 0.805, 8.0, kind="onnx-int8"),
            "fidelity": {"agreement": 0.985, "cosine": 0.999, "kl": 0.001}, "val_agreement": 0.993}
    ens = {**entry("ens", "ensemble", 0.80, 0.15),
           "hyperparameters": {"weights": {"tfidf-lr": 0.4, "tfidf-soft-lr": 0.6}, "method": "greedy",
                               "val_score": 0.79, "budget_ms": 0.2, "budget_basis": "budget_ms = 0.2"},
           "ci_vs_teacher": {"difference": -0.01, "low": -0.03, "high": 0.012, "share_a_better": 0.2,
                             "resamples": 1000, "confidence": 0.95}}
    entries += [onnx, int8, ens]
    for e in entries:
        e["speedups"] = {"teacher": 20.0 / e["latency_ms"]["p50"], "teacher-onnx": 12.0 / e["latency_ms"]["p50"],
                         "teacher-onnx-int8": 8.0 / e["latency_ms"]["p50"]}
        e["ece"] = 0.05
        e["fidelity"].setdefault("kl", 0.1)
    files.write_json(run_dir / "leaderboard.json", entries)
    curve = {"ece": 0.05, "bin_lower": [0.5, 0.9], "confidence": [0.6, 0.95], "accuracy": [0.55, 0.9],
             "count": [10, 20], "bins": 15}
    files.write_json(run_dir / "diagnostics.json", {
        "calibration": {e["name"]: curve for e in entries},
        "comparisons": [{"model": "ens", "versus": "teacher", "metric": "macro_f1",
                         **ens["ci_vs_teacher"]}],
        "dark_knowledge": {"label_names": ["a", "b"], "task": "multiclass", "examples": [
            {"text": "so <b>bold</b>", "gold": "a", "teacher": {"T=1": [0.9, 0.1], "T=4": [0.6, 0.4]},
             "models": {"tfidf-lr": [0.7, 0.3], "ens": [0.8, 0.2]}}]},
        "empty_ensembles": [{"name": "ens-fast", "reason": "no student fits the latency budget of 0.0100 ms"}],
    })
    files.write_json(run_dir / "seeds.json", {"metric": "macro_f1", "note": "n", "models": {
        "tfidf-soft-lr": {"mean": 0.74, "std": 0.01, "n": 3, "seeds": [13, 14, 15], "values": [0.73, 0.74, 0.75]}}})
    return run_dir


def test_full_report_has_every_section_and_target(full_run_dir):
    write_report(full_run_dir, "macro_f1")
    markdown = (full_run_dir / "report.md").read_text()
    for fragment in ("## Ensembles", "## Calibration", "## Uncertainty", "## Dark knowledge", "## Seeds",
                     "![reliability diagram](reliability.png)", "| teacher T=4 | 0.600 | 0.400 |",
                     "| tfidf-soft-lr | 74.00 ± 1.00 | 3 | 13, 14, 15 |",
                     "Teacher on ONNX Runtime int8: 2.50x the PyTorch fp32 speed",
                     "agreement with the PyTorch teacher 98.5% on test, 99.3% on val. Target >= 2x and >= 99% "
                     "agreement on val (the rule for labeling a transfer set): target met.",
                     "Ensemble `ens` (tfidf-lr, tfidf-soft-lr): 80.00 test macro_f1, -1.00 points vs the teacher "
                     "(98.8% of its score)", "at p50 0.150 ms = 1/133 of the teacher's. Target >= 99% of the "
                     "teacher's score at <= 1/100 of the latency: target NOT met.",
                     "No single student runs within 0.200 ms (1/100 of the teacher's p50); the fastest, "
                     "`tfidf-logit-ridge`, takes 0.400 ms (target >= 97% of the teacher at <= 1/100 of its latency: "
                     "target NOT met).", "Ensemble `ens-fast` is EMPTY: no student fits the latency budget",
                     "| ens | teacher | -1.00 | [-3.00, +1.20] | 20.0% | no significant difference |"):
        assert fragment in markdown, fragment
    assert (full_run_dir / "reliability.png").read_bytes().startswith(PNG_MAGIC)
    row = next(r for r in table_rows(files.read_json(full_run_dir / "leaderboard.json"), "macro_f1") if r[0] == "ens")
    column = {name: i for i, name in enumerate(COLUMNS)}
    assert row[column["vs ONNX"]] == "80.0x" and row[column["vs int8"]] == "53.3x" and row[column["ECE"]] == "0.050"
    page = (full_run_dir / "report.html").read_text()
    assert page.count("<img") == 1 and page.count("<svg") == 1 and "so &lt;b&gt;bold&lt;/b&gt;" in page


def test_report_reads_as_prose_one_teacher_p50_no_reprs_no_negative_zero(full_run_dir):
    """The report quotes the leaderboard's teacher p50 only (the ensembles stage measured its own when it chose
    a budget), writes numbers one way, and shows no Python reprs or raw Markdown."""
    entries = files.read_json(full_run_dir / "leaderboard.json")
    for e in entries:
        if e["name"] == "teacher":
            e["fidelity"]["kl"] = -1e-12  # rounds to -0.000
        if e["name"] == "ens":
            e["hyperparameters"]["budget_basis"] = "0.01 x the PyTorch teacher's single-text p50 of 19.468 ms"
    files.write_json(full_run_dir / "leaderboard.json", entries)
    diagnostics = files.read_json(full_run_dir / "diagnostics.json")
    diagnostics["empty_ensembles"][0]["reason"] = ("no student fits the latency budget of 0.0195 ms (0.001 x the "
                                                  "PyTorch teacher's single-text p50 of 19.468 ms)")
    files.write_json(full_run_dir / "diagnostics.json", diagnostics)
    write_report(full_run_dir, "macro_f1")
    markdown, page = (full_run_dir / "report.md").read_text(), (full_run_dir / "report.html").read_text()
    text = re.sub(r"<svg.*?</svg>|<[^>]+>", "", page, flags=re.DOTALL)  # what a reader sees, chart aside
    for written in (markdown, text):
        assert "19.468" not in written and "19.5" not in written
        assert "{'" not in written and "['" not in written
        assert not re.search(r"-0\.0+(?![0-9])", written)
    assert "`" not in text and "**" not in text
    assert "tweeteval-test (multiclass; 10 train, 5 val, 5 test rows)" in text
    assert "Versions: torch 2.x, scikit-learn 1.x." in text
    assert "(p50 8.00 vs 20.0 ms)" in text  # the teacher's p50, as in the table
    assert "0.200 ms (0.01 x the PyTorch teacher's single-text p50 when the ensemble was chosen)" in text
    teacher_row = next(line for line in markdown.splitlines() if line.startswith("| teacher |"))
    assert "| 20.0 | 40.0 |" in teacher_row and "| 0.000 |" in teacher_row


@pytest.mark.parametrize("value, written", [(86.842, "86.8"), (0.2049, "0.205"), (0.0888, "0.0888"),
                                            (0.089, "0.0890"), (9.996, "10.0"), (166.4, "166"), (1234.5, "1234"),
                                            (0.0, "0.00"), (-1e-9, "-0.00000000100")])
def test_three_significant_figures(value, written):
    assert significant(value) == written


def test_no_negative_zero():
    assert fixed(-0.0004, 3) == "0.000" and fixed(-0.0006, 3) == "-0.001"
    assert signed(-0.004, 2) == "+0.00" and signed(0.0, 2) == "+0.00" and signed(-0.006, 2) == "-0.01"


def crowded(n: int) -> list[dict]:
    """n models crammed into a corner of the chart, plus one far away, so that labels must move."""
    models = [entry(f"model-with-a-long-name-{i}", "distilled", 0.70 + 0.0001 * i, 1.0 + 0.001 * i) for i in range(n)]
    return [entry("teacher", "teacher", 0.81, 20.0), *models]


def label_boxes(scene: chart.Scene) -> list[chart.Box]:
    """Every badge and every text outside a badge, as the chart estimated them."""
    marks = [inner for mark in scene.marks for inner in (mark.marks if isinstance(mark, chart.Group) else [mark])]
    return [m.box for m in marks if isinstance(m, chart.Badge)] + [
        chart.text_box(m) for m in marks if isinstance(m, chart.Text)]


@pytest.mark.parametrize("width", [240, 390, 760, 1200])
@pytest.mark.parametrize("n", [3, 12, 40])
def test_chart_labels_never_overlap(width, n):
    scene = chart.quality_vs_latency(crowded(n), "macro_f1", width)
    boxes = label_boxes(scene)
    assert [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)] == []
    assert all(0 <= box.x and box.x + box.w <= width and 0 <= box.y <= scene.height for box in boxes)
    entries = [m for m in scene.marks if isinstance(m, chart.Group) and m.kind == "entry"]
    assert [e.model for e in entries] == ["teacher", *(f"model-with-a-long-name-{i}" for i in reversed(range(n)))]
    if n <= 12:  # room for every badge on the plot
        assert sum(isinstance(m, chart.Badge) for g in scene.marks if isinstance(g, chart.Group)
                   and g.kind == "point" for m in g.marks) == n + 1


def test_the_png_and_the_svg_draw_the_same_scene(run_dir):
    write_report(run_dir, "macro_f1")
    from PIL import Image

    scene = chart.quality_vs_latency(files.read_json(run_dir / "leaderboard.json"), "macro_f1")
    with Image.open(run_dir / "quality_vs_latency.png") as png:
        assert png.size == (2 * scene.width, 2 * scene.height)  # 144 dpi: two pixels per scene pixel
    svg = ElementTree.fromstring(chart.to_svg(scene))
    assert svg.get("viewBox") == f"0 0 {scene.width} {scene.height}"
