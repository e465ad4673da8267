"""Request and response bodies of the serving API; the OpenAPI schema at /openapi.json is generated from them.

Limits live here as constants so that the schema, the validation and the page all quote the same numbers.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bertdistill.names import Task

MAX_TEXT_CHARS = 5_000  # a longer text is predicted on its first 5,000 characters, and the answer says so
MAX_BATCH = 64  # texts per request
MAX_BODY_BYTES = 1 << 20  # the whole request body (413 beyond it)
# a character that is not whitespace by str.isspace(), spelled out: `\S` differs between Python's regexes and the
# ECMA ones of the OpenAPI schema (e.g. U+001C is whitespace only in Python), and both must agree
NON_BLANK = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_NON_BLANK = re.compile(NON_BLANK)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str) -> str:
    if not _NON_BLANK.search(text):
        raise ValueError("text is empty or only whitespace")
    if _SURROGATE.search(text):
        raise ValueError("text contains an unpaired UTF-16 surrogate (not valid Unicode)")
    return text


Text = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": NON_BLANK},
                            description=f"raw text, not only whitespace; only its first {MAX_TEXT_CHARS} characters "
                                        "are predicted (each prediction's `truncated` says whether it was cut)"),
                 AfterValidator(_check_text)]
MODEL_NAME_MARK = "x-bertdistill-model-name"  # app.py lists the run's models as this schema's enum
ModelName = Annotated[str, Field(min_length=1, max_length=200, description="a name from GET /api/models",
                                 json_schema_extra={MODEL_NAME_MARK: True})]


_ONE_OF_TEXT_OR_TEXTS = [{"required": ["text"], "properties": {"text": {"type": "string"}}},
                         {"required": ["texts"], "properties": {"texts": {"type": "array"}}}]


class TextsRequest(BaseModel):
    """One text (`text`) or a batch (`texts`): exactly one of the two."""

    # strict: JSON types only (no "true" for true, no 1 for a string), so the schema says exactly what is accepted
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": _ONE_OF_TEXT_OR_TEXTS, "examples": [{"text": "what a great match!"}]})

    text: Text | None = None
    texts: list[Text] | None = Field(None, min_length=1, max_length=MAX_BATCH,
                                     description=f"1 to {MAX_BATCH} texts, predicted as one batch")

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> "TextsRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (one string) or 'texts' (a list of strings)")
        return self

    @property
    def batch(self) -> list[str]:
        return [self.text] if self.texts is None else self.texts


class PredictRequest(TextsRequest):
    """Texts, and which models to run on them (default: every model of the run)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": _ONE_OF_TEXT_OR_TEXTS,
        "examples": [{"text": "what a great match!"}, {"texts": ["first text", "second text"], "compare": False}]})

    models: list[ModelName] | None = Field(None, min_length=1, max_length=50,
                                           description="model names; default: all of them, teacher first")
    compare: bool = Field(True, description="also run the teacher, to give every model its cosine similarity "
                                            "and agreement with the teacher's probabilities")


class Prediction(BaseModel):
    """One model's output for one text."""

    labels: list[str] = Field(description="the top class (multiclass), or every label whose probability reaches "
                                          "the model's threshold tuned on val, default 0.5 (multilabel)")
    probabilities: list[float] = Field(description="one per label, in the order of label_names")
    logits: list[float] | None = Field(None, description="the teacher's raw logits (teacher only): its "
                                       "distribution at temperature T is softmax(logits / T) for multiclass, "
                                       "sigmoid(logits / T) per label for multilabel")
    text_chars: int = Field(description="the length of the text as sent, in characters (Unicode code points)")
    truncated: bool = Field(description=f"whether the text was longer than {MAX_TEXT_CHARS} characters, so that "
                                        f"only its first {MAX_TEXT_CHARS} were predicted")
    cosine_to_teacher: float | None = Field(None, description="cosine similarity of the probability vectors")
    js_divergence_to_teacher: float | None = Field(None, ge=0, le=1, description=(
        "Jensen-Shannon divergence from the teacher's probabilities, in bits: 0 = the same distribution, 1 = "
        "disjoint; multilabel: the mean over labels of the divergence between the per-label Bernoulli "
        "distributions (p, 1 - p). It separates models where cosine cannot (about 0.999 for every confident "
        "model of a two-class task)"))
    agreement_with_teacher: float | None = Field(None, description="1 or 0: same top class (multiclass); "
                                                 "fraction of labels on the same side of 0.5 (multilabel)")


class ModelResult(BaseModel):
    """One model on every text of a request, with its measured server-side time."""

    name: str
    role: str
    kind: str
    time_ms: float = Field(description="wall time of this model's predict call on the whole batch, raw strings "
                                       "in, probabilities out, measured in the server")
    time_ms_per_text: float
    speedup_vs_teacher: float | None = Field(None, description="teacher time / this model's time on this request "
                                             "only: one timing, noisy; the model's speed is the leaderboard's")
    leaderboard_p50_ms: float | None = Field(None, description="the model's single-text p50 on the leaderboard "
                                             "(null before `bertdistill evaluate`): read time_ms against it")
    leaderboard_speedup_vs_teacher: float | None = Field(None, description="teacher p50 / this model's p50, from "
                                                         "the leaderboard")
    predictions: list[Prediction]


class PredictResponse(BaseModel):
    task: Task
    label_names: list[str]
    results: list[ModelResult]


class LeaderboardSummary(BaseModel):
    """A model's row of the run's held-out leaderboard (test split); fields may be null for older runs."""

    metric: str = Field(description="the run's headline metric, e.g. macro_f1 or mean_roc_auc")
    score: float | None
    metrics: dict[str, Any] = Field(description="every quality number on test, as in leaderboard.json")
    agreement: float | None
    cosine: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    throughput_per_s: float | None
    speedup_vs_teacher: float | None
    gain_vs_twin: float | None
    size_bytes: int | None
    n_params: int | None


class LeaderboardRow(LeaderboardSummary):
    name: str
    role: str
    kind: str
    twin: str | None = None
    served: bool = Field(description="whether this server runs the model (GET /api/models lists those)")


class ModelInfo(BaseModel):
    name: str
    role: str = Field(description="teacher, baseline, distilled, ensemble, ...")
    kind: str
    twin: str | None = Field(None, description="a distilled student's hard-label baseline on the same features")
    thresholds: list[float] | None = Field(None, description="multilabel: per-label thresholds tuned on val")
    leaderboard: LeaderboardSummary | None = Field(None, description="null if the run was not evaluated")


class ModelsResponse(BaseModel):
    task: Task
    label_names: list[str]
    models: list[ModelInfo]


class Example(BaseModel):
    text: str
    gold: list[str] = Field(description="the gold label(s) of this test text")


class RunInfo(BaseModel):
    """What the page needs to lay itself out: the run, its labels, examples and where it was measured."""

    name: str
    dataset: str
    task: Task
    label_names: list[str]
    metric: str
    examples: list[Example] = Field(description="a few texts of the test split (empty if the data is not here)")
    environment: dict[str, Any] | None = Field(None, description="where the leaderboard was measured")
    has_plot: bool = Field(description="whether GET /api/quality_vs_latency.png exists (written by `bertdistill "
                                       "report`; GET /api/quality_vs_latency.svg needs only the leaderboard)")
    max_text_chars: int = MAX_TEXT_CHARS
    max_batch: int = MAX_BATCH


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: int


class ErrorResponse(BaseModel):
    """Every 4xx answer: a one-line message, and for validation errors the individual problems."""

    detail: str
    errors: list[dict[str, Any]] | None = None
