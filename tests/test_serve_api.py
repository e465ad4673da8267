"""The serving API on a real tiny run: answers, agreement with the models themselves, 4xx for every bad input,
a fuzz run over the OpenAPI schema, and new model kinds appearing without changes to the server."""
from __future__ import annotations

import json

import numpy as np
import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from scipy.spatial.distance import jensenshannon

from bertdistill.cli import main
from bertdistill.config import config_from_dict
from bertdistill.data import load_dataset
from bertdistill.evaluation.metrics import sigmoid, softmax
from bertdistill.serve import Catalog, create_app
from bertdistill.serve.catalog import data_found_from, js_divergence
from bertdistill.serve.schemas import MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS

STUDENTS = ["tfidf-lr", "tfidf-soft-lr", "tfidf-logit-ridge"]  # the default config's; runs may also have ensembles
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def catalog(offensive_run_dir) -> Catalog:
    return Catalog.load(offensive_run_dir)


@pytest.fixture(scope="module")
def served(catalog) -> list[str]:
    """Every model `pipeline.load_models` gives for the run, teacher first."""
    names = list(catalog.models)
    assert names[0] == "teacher" and set(STUDENTS) <= set(names)
    return names


@pytest.fixture(scope="module")
def client(catalog):
    with TestClient(create_app(catalog)) as client:
        yield client


def test_health_run_and_models(client, served, offensive_run_dir):
    assert client.get("/api/health").json() == {"status": "ok", "models": len(served)}
    run = client.get("/api/run").json()
    assert run["task"] == "multiclass" and run["label_names"] == ["not-offensive", "offensive"]
    assert run["metric"] == "macro_f1" and run["has_plot"] and run["environment"]["machine"]
    assert 1 <= len(run["examples"]) <= 6
    assert {tuple(e["gold"]) for e in run["examples"]} == {("not-offensive",), ("offensive",)}  # both classes shown
    listing = client.get("/api/models").json()
    assert [m["name"] for m in listing["models"]] == served
    entries = json.loads((offensive_run_dir / "leaderboard.json").read_text())
    leaderboard = {e["name"]: e for e in entries}
    rows = client.get("/api/leaderboard").json()
    assert [r["name"] for r in rows] == [e["name"] for e in entries]
    assert all(r["served"] == (r["name"] in served) for r in rows)
    for model in listing["models"]:
        entry, summary = leaderboard[model["name"]], model["leaderboard"]
        assert model["role"] == entry["role"] and model["kind"] == entry["kind"]
        assert summary["score"] == entry["metrics"]["macro_f1"]
        assert summary["latency_p50_ms"] == entry["latency_ms"]["p50"]
        assert summary["cosine"] == entry["fidelity"]["cosine"]


def test_models_run_warmed_up_at_the_leaderboards_thread_count(catalog, offensive_run_dir):
    """Every model, the teacher first of all, ran at start-up; torch runs at the threads the p50s were measured at."""
    assert all(np.isfinite(served.single_text_ms) for served in catalog.models.values())
    environment = json.loads((offensive_run_dir / "environment.json").read_text())
    assert torch.get_num_threads() == environment["threads"]


def test_predict_one_text_through_every_model(client, catalog, served):
    text = "@user you are a complete idiot and everyone knows it"
    body = client.post("/api/predict", json={"text": text}).json()
    assert body["label_names"] == ["not-offensive", "offensive"]
    results = {r["name"]: r for r in body["results"]}
    assert list(results) == served
    teacher = results["teacher"]["predictions"][0]
    assert teacher["cosine_to_teacher"] == pytest.approx(1.0) and teacher["agreement_with_teacher"] == 1.0
    assert teacher["probabilities"] == pytest.approx(softmax(np.array([teacher["logits"]]))[0].tolist(), abs=1e-6)
    assert results["teacher"]["speedup_vs_teacher"] == 1.0
    for name, result in results.items():
        prediction = result["predictions"][0]
        direct = catalog.models[name].model.predict_proba([text])[0]
        assert prediction["probabilities"] == pytest.approx(direct.tolist(), abs=1e-5)  # exactly the model's output
        assert prediction["labels"] == [body["label_names"][int(np.argmax(direct))]]
        assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert result["time_ms"] > 0 and result["time_ms_per_text"] == result["time_ms"]
        assert result["speedup_vs_teacher"] == pytest.approx(results["teacher"]["time_ms"] / result["time_ms"])
        assert 0.0 <= prediction["cosine_to_teacher"] <= 1.0 + 1e-9
        same_top = np.argmax(prediction["probabilities"]) == np.argmax(teacher["probabilities"])
        assert prediction["agreement_with_teacher"] == float(same_top)
        assert (prediction["logits"] is None) == (name != "teacher")
        assert prediction["truncated"] is False and prediction["text_chars"] == len(text)
        teacher_probs = np.array(teacher["probabilities"])
        assert prediction["js_divergence_to_teacher"] == pytest.approx(
            jensenshannon(teacher_probs, np.array(prediction["probabilities"]), base=2) ** 2, abs=1e-7)
    assert teacher["js_divergence_to_teacher"] == pytest.approx(0.0, abs=1e-12)


def test_each_result_carries_the_leaderboards_p50_next_to_this_requests_time(client, offensive_run_dir):
    """One request's time is noisy: every row also gives the model's p50 and speed-up from the leaderboard."""
    entries = {e["name"]: e for e in json.loads((offensive_run_dir / "leaderboard.json").read_text())}
    body = client.post("/api/predict", json={"text": "see you at the match tonight"}).json()
    for result in body["results"]:
        entry = entries[result["name"]]
        assert result["leaderboard_p50_ms"] == entry["latency_ms"]["p50"]
        assert result["leaderboard_speedup_vs_teacher"] == entry["speedup_vs_teacher"]
    alone = client.post("/api/models/tfidf-lr/predict", json={"text": "hello"}).json()
    assert alone["leaderboard_p50_ms"] == entries["tfidf-lr"]["latency_ms"]["p50"]


def test_a_text_past_the_limit_is_cut_and_the_answer_says_so(client, catalog):
    head = "you are a clown, " * (MAX_TEXT_CHARS // 17 + 1)
    text = head[:MAX_TEXT_CHARS] + " and this tail is never read" * 40
    for result in client.post("/api/predict", json={"text": text}).json()["results"]:
        (cut,) = result["predictions"]
        assert cut["truncated"] is True and cut["text_chars"] == len(text)
        direct = catalog.models[result["name"]].model.predict_proba([text[:MAX_TEXT_CHARS]])[0]
        assert cut["probabilities"] == pytest.approx(direct.tolist(), abs=1e-5)  # the first 5,000 characters
    for result in client.post("/api/predict", json={"texts": [text, "short one"]}).json()["results"]:
        cut, short = result["predictions"]
        assert (cut["truncated"], cut["text_chars"]) == (True, len(text))
        assert (short["truncated"], short["text_chars"]) == (False, len("short one"))
    alone = client.post("/api/models/tfidf-lr/predict", json={"text": text}).json()
    assert alone["predictions"][0]["truncated"] is True


@pytest.mark.parametrize("task, teacher, probs, expected", [
    ("multiclass", [1.0, 0.0], [0.0, 1.0], 1.0),  # disjoint
    ("multiclass", [0.3, 0.7], [0.3, 0.7], 0.0),
    ("multiclass", [0.5, 0.5], [1.0, 0.0], 1.5 - 0.75 * np.log2(3)),  # by hand: H(M) - (H(P) + H(Q)) / 2
    ("multilabel", [1.0, 0.5], [0.0, 0.5], 0.5),  # label 1 disjoint, label 2 the same: mean 0.5
])
def test_js_divergence_known_answers(task, teacher, probs, expected):
    assert js_divergence(np.array(teacher), np.array(probs), task) == pytest.approx(expected, abs=1e-12)


def test_js_divergence_separates_confident_two_class_models_that_cosine_does_not():
    teacher = np.array([0.04, 0.96])
    students = [np.array([0.0003, 0.9997]), np.array([0.08, 0.92])]  # overconfident; close to the teacher
    cosines = [teacher @ s / np.linalg.norm(teacher) / np.linalg.norm(s) for s in students]
    divergences = [js_divergence(teacher, s, "multiclass") for s in students]
    assert round(cosines[0], 3) == round(cosines[1], 3) == 0.999
    assert divergences[0] > 2 * divergences[1] > 0


def test_the_chart_route_lays_the_chart_out_for_the_width_asked(client, served):
    answer = client.get("/api/quality_vs_latency.svg", params={"width": 330})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.headers["content-security-policy"] == "default-src 'none'"
    assert answer.text.startswith("<svg") and 'width="330"' in answer.text
    assert all(f'data-model="{name}"' in answer.text for name in served)
    assert client.get("/api/quality_vs_latency.svg", params={"width": 10}).status_code == 422


def test_examples_are_found_for_a_run_with_a_relative_data_dir_from_anywhere(offensive_run_dir, tmp_path,
                                                                              monkeypatch):
    """Runs recorded before data dirs were made absolute hold them relative to where the run was started (or
    leave them to the defaults, such as ./data): served from elsewhere, they are looked for above the run."""
    from conftest import SHARED_DATA

    monkeypatch.setattr("bertdistill.data.load.CACHE_DIR", tmp_path / "no-cache")
    monkeypatch.delenv("BERTDISTILL_DATA_DIR", raising=False)
    project = tmp_path / "project"
    run_dir = project / "runs" / "old"
    run_dir.mkdir(parents=True)
    for folder in (tmp_path / "store", project / "data"):  # recorded as ../store; the default ./data
        folder.mkdir()
        (folder / "tweeteval").symlink_to(SHARED_DATA / "tweeteval")
    (tmp_path / "far" / "away").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "far" / "away")
    config = config_from_dict(json.loads((offensive_run_dir / "config.json").read_text()), "config.json")
    for recorded, found in (("../store", tmp_path / "store"), (None, project / "data")):
        anchored = data_found_from(config.data.model_copy(update={"data_dir": recorded}), run_dir)
        assert anchored.data_dir == str(found)
        assert load_dataset(anchored).test.texts == load_dataset(config.data).test.texts
    missing = config.data.model_copy(update={"data_dir": "../store", "path": "tweeteval/no-such-task"})
    assert data_found_from(missing, run_dir) == missing  # nothing to anchor: the loader's own message follows


BAD_REQUESTS = [  # (what, request kwargs, status, words the message must contain)
    ("malformed JSON", dict(content=b'{"text": "hi"', headers=JSON), 422, "malformed JSON"),
    ("non-UTF-8 body", dict(content=b'{"text": "caf\xe9"}', headers=JSON), 400, "UTF-8"),
    ("empty text", dict(json={"text": ""}), 422, "at least 1 character"),
    ("whitespace only", dict(json={"text": " \t\n "}), 422, "only whitespace"),
    ("whitespace in a batch", dict(json={"texts": ["fine", "   "]}), 422, "texts.1"),
    ("batch too large", dict(json={"texts": ["a"] * (MAX_BATCH + 1)}), 422, f"at most {MAX_BATCH}"),
    ("empty batch", dict(json={"texts": []}), 422, "at least 1"),
    ("text and texts", dict(json={"text": "a", "texts": ["b"]}), 422, "exactly one"),
    ("neither", dict(json={}), 422, "exactly one"),
    ("text not a string", dict(json={"text": 5}), 422, "string"),
    ("compare not a bool", dict(json={"text": "a", "compare": "yes"}), 422, "boolean"),
    ("unknown field", dict(json={"text": "a", "lang": "en"}), 422, "lang"),
    ("a JSON list", dict(json=["a"]), 422, "JSON object"),
    ("no content type", dict(content=b'{"text": "hi"}'), 415, "application/json"),
    ("plain text", dict(content=b'{"text": "hi"}', headers={"content-type": "text/plain"}), 415, "application/json"),
    ("a form", dict(data={"text": "hi"}), 415, "Content-Type: application/json"),
    ("JSON with a charset", dict(content=b'{"text": ""}', headers={"content-type": "application/json; charset=utf-8"}),
     422, "at least 1 character"),
    ("lone surrogate", dict(content=b'{"text": "\\ud800"}', headers=JSON), 422, "text"),
    ("unknown model", dict(json={"text": "a", "models": ["bert-huge"]}), 422, "unknown model 'bert-huge'"),
    ("model name as a path", dict(json={"text": "a", "models": ["../teacher"]}), 422, "unknown model"),
    ("body over the limit", dict(content=b" " * (MAX_BODY_BYTES + 1), headers=JSON), 413, "larger than"),
    ("chunked body over the limit", dict(content=iter([b" " * 65536] * 17), headers=JSON), 413, "larger than"),
]


@pytest.mark.parametrize("what, request_kwargs, status, words", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_with_a_message(client, what, request_kwargs, status, words):
    response = client.post("/api/predict", **request_kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize("name", ["bert-huge", "..%2Fteacher", "teacher.json", "%2e%2e%2fconfig.json"])
def test_unknown_model_endpoint_is_404(client, name):
    response = client.post(f"/api/models/{name}/predict", json={"text": "a"})
    assert response.status_code == 404 and response.json()["detail"]


def test_page_plot_and_openapi(client, served):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/app.js"' in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    plot = client.get("/api/quality_vs_latency.png")
    assert plot.headers["content-type"] == "image/png" and plot.content.startswith(b"\x89PNG")
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/models/{name}/predict"]["post"]
    assert operation["parameters"][0]["schema"]["enum"] == served
    assert {"200", "400", "404", "413", "415", "422"} <= set(operation["responses"])
    assert {"200", "400", "413", "415", "422"} <= set(schema["paths"]["/api/predict"]["post"]["responses"])


def test_a_new_kind_of_model_is_served_without_changes(offensive_run_dir, catalog, monkeypatch):
    """An ensemble (or any model with predict_proba) returned by load_models shows up in every route; one that
    cannot predict is left out at start-up instead of taking the server down."""

    class MeanOfStudents:
        kind, role, twin = "mean-ensemble", "ensemble", None
        calls = 0

        def predict_proba(self, texts):
            MeanOfStudents.calls += 1
            return np.mean([catalog.models[n].model.predict_proba(texts) for n in STUDENTS], axis=0)

    class Broken:
        def predict_proba(self, texts):
            raise RuntimeError("weights missing")

    loaded = {name: served.model for name, served in catalog.models.items()}
    monkeypatch.setattr("bertdistill.serve.catalog.load_models",
                        lambda run: {**loaded, "mean": MeanOfStudents(), "broken": Broken()})
    with TestClient(create_app(Catalog.load(offensive_run_dir))) as client:  # a model that fails is left out
        assert MeanOfStudents.calls >= 3  # warmed up at start-up like every model
        listing = client.get("/api/models").json()["models"]
        assert "broken" not in [m["name"] for m in listing]
        assert listing[-1]["name"] == "mean" and listing[-1]["role"] == "ensemble"
        assert listing[-1]["leaderboard"] is None  # not evaluated in this run
        result = client.post("/api/models/mean/predict", json={"text": "hello there"}).json()
        assert result["kind"] == "mean-ensemble" and len(result["predictions"][0]["probabilities"]) == 2


def test_multilabel_run(jigsaw_run_dir):
    """Per-label probabilities and labels at 0.5, from a run served before `evaluate` (no leaderboard yet)."""
    with TestClient(create_app(Catalog.load(jigsaw_run_dir))) as client:
        listing = client.get("/api/models").json()
        assert len(listing["label_names"]) == 6
        assert client.get("/api/leaderboard").json() == [] and not client.get("/api/run").json()["has_plot"]
        assert all(m["leaderboard"] is None and m["thresholds"] is None for m in listing["models"])
        assert client.get("/api/quality_vs_latency.png").status_code == 404
        assert client.get("/api/quality_vs_latency.svg").status_code == 404
        body = client.post("/api/predict", json={"text": "you stupid idiot, I will hurt you"}).json()
        assert body["task"] == "multilabel"
        by_name = {m["name"]: m for m in listing["models"]}
        for result in body["results"]:
            prediction = result["predictions"][0]
            probabilities = np.array(prediction["probabilities"])
            assert probabilities.shape == (6,) and ((0 <= probabilities) & (probabilities <= 1)).all()
            cut = by_name[result["name"]]["thresholds"] or [0.5] * 6
            expected = [n for n, p, c in zip(body["label_names"], probabilities, cut) if p >= c]
            assert prediction["labels"] == expected
            assert 0 <= prediction["agreement_with_teacher"] <= 1
            pairs = [np.array(body["results"][0]["predictions"][0]["probabilities"]), probabilities]
            per_label = jensenshannon(*(np.stack([p, 1 - p], 1) for p in pairs), base=2, axis=1) ** 2
            assert prediction["js_divergence_to_teacher"] == pytest.approx(per_label.mean(), abs=1e-9)
            assert result["name"] in by_name
        teacher = body["results"][0]["predictions"][0]
        assert teacher["probabilities"] == pytest.approx(sigmoid(np.array(teacher["logits"])).tolist(), abs=1e-6)


def test_cli_serve_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_fuzz_the_openapi_schema(catalog, mode):
    """Schema-driven requests, valid (positive) and invalid (negative): never a 5xx, always a documented status,
    content type and body. (A hand-made loop: schemathesis' pytest fixture loader does not support pytest 9.)"""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(catalog))
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.path_parameters)):
            continue  # nothing to make invalid in a GET without parameters
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()


def test_multilabel_labels_use_the_thresholds_tuned_on_val():
    from bertdistill.serve.catalog import ServedModel

    names = ["toxic", "insult", "threat"]
    tuned = ServedModel("m", None, "distilled", "k", thresholds=np.array([0.3, 0.6, 0.5]))
    assert tuned.labels(np.array([0.35, 0.55, 0.5]), "multilabel", names) == ["toxic", "threat"]
    untuned = ServedModel("m", None, "distilled", "k")
    assert untuned.labels(np.array([0.35, 0.55, 0.5]), "multilabel", names) == ["insult", "threat"]
    assert untuned.labels(np.array([0.2, 0.7, 0.1]), "multiclass", names) == ["insult"]


def test_the_schemas_non_blank_pattern_is_pythons_whitespace_exactly():
    """The OpenAPI pattern and the server's check must agree on every character (U+001C once slipped through)."""
    import re
    import sys

    from bertdistill.serve.schemas import NON_BLANK

    pattern = re.compile(NON_BLANK)
    disagree = [hex(i) for i in range(sys.maxunicode + 1) if chr(i).isspace() == bool(pattern.fullmatch(chr(i)))]
    assert disagree == []
