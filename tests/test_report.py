"""report.md / report.html / plot from a hand-made leaderboard."""
from __future__ import annotations

import base64
import re

import pytest

from bertdistill import io
from bertdistill.errors import BertdistillError
from bertdistill.report import findings, markdown_table, table_rows, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def entry(name, role, score, p50, twin=None, gain=None, kind=None):
    return {
        "name": name, "role": role, "kind": kind or name, "twin": twin,
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
    io.write_json(tmp_path / "leaderboard.json", entries)
    io.write_json(tmp_path / "environment.json", {
        "date": "2024-01-02 03:04 UTC", "machine": "x86_64 Test CPU, 2 cores", "python": "3.11.0", "threads": 1,
        "versions": {"torch": "2.x", "scikit-learn": "1.x"}})
    io.write_json(tmp_path / "dataset.json", {"name": "tweeteval-test", "task": "multiclass",
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
    assert ("Distilled `tfidf-soft-lr` beats its hard-label twin `tfidf-lr` by +2.34 points of test macro_f1 "
            "(74.34 vs 72.00).") in markdown
    assert ("Distilled `tfidf-logit-ridge` does not beat its hard-label twin `tfidf-lr` by -1.50 points of test "
            "macro_f1 (70.50 vs 72.00).") in markdown
    assert markdown.count("beats its hard-label twin") == 1


def test_findings_only_for_students_with_a_twin():
    entries = [entry("teacher", "teacher", 0.8, 10.0), entry("b", "baseline", 0.7, 1.0),
               entry("d", "distilled", 0.7, 1.0, twin="b", gain=0.0)]
    lines = findings(entries, "macro_f1")
    assert len(lines) == 1
    assert "`d` does not beat" in lines[0] and "+0.00 points" in lines[0]


def test_markdown_table_teacher_first_then_best_metric(run_dir):
    entries = io.read_json(run_dir / "leaderboard.json")
    rows = table_rows(entries, "macro_f1")
    assert [row[0] for row in rows] == ["teacher", "tfidf-soft-lr", "tfidf-lr", "tfidf-logit-ridge",
                                        "<b>odd & name</b>"]
    soft = rows[1]
    assert soft[2] == "74.34" and soft[3] == "+2.34 vs tfidf-lr"
    assert rows[3][3] == "-1.50 vs tfidf-lr"
    assert rows[0][3] == ""  # no twin for the teacher
    assert soft[9] == "40.0x" and soft[10] == "12.3" and soft[11] == "1,234,567"
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


def test_html_is_escaped_and_embeds_the_plot(run_dir):
    write_report(run_dir, "macro_f1")
    page = (run_dir / "report.html").read_text()
    assert "&lt;b&gt;odd &amp; name&lt;/b&gt;" in page
    assert "<b>odd" not in page
    assert page.count("<tr>") == 1 + 5
    assert "beats its hard-label twin" in page
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert embedded is not None
    assert base64.b64decode(embedded.group(1)) == (run_dir / "quality_vs_latency.png").read_bytes()


def test_report_without_leaderboard_is_a_bertdistill_error(tmp_path):
    with pytest.raises(BertdistillError, match="bertdistill evaluate"):
        write_report(tmp_path, "macro_f1")
