"""The JSON API, one short function per route; every status code a route can answer is declared for OpenAPI.

Routes are plain `def`, which FastAPI runs in its thread pool, so a slow teacher call never blocks the event loop;
except the single-model route, which answers a quick prediction (a student on a few texts) on the event loop
itself: there a thread-pool hop would cost about as much as the prediction (see benchmarks/SERVING.md).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from bertdistill.report.chart import DEFAULT_WIDTH
from bertdistill.serve.catalog import Catalog, UnknownModel
from bertdistill.serve.schemas import (
    ErrorResponse,
    Health,
    LeaderboardRow,
    ModelName,
    ModelResult,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    RunInfo,
    TextsRequest,
)

_MEANING = {
    400: "the body is not UTF-8",
    404: "no such model (or no plot in this run)",
    413: "the request body is too large",
    415: "the body is not sent as Content-Type: application/json",
    422: "malformed JSON, a missing, empty or whitespace-only text, too many texts, an unknown model, a query "
         "parameter out of range",
}
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"}


def errors(*codes: int) -> dict:
    return {code: {"model": ErrorResponse, "description": _MEANING[code]} for code in codes}


async def get_catalog(request: Request) -> Catalog:  # async: a sync dependency would cost a thread-pool hop
    return request.app.state.catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
router = APIRouter()


@router.get("/health", response_model=Health)
async def health(catalog: CatalogDep) -> Health:
    """The models are loaded and the server answers."""
    return Health(models=len(catalog.models))


@router.get("/run", response_model=RunInfo)
def run_info(catalog: CatalogDep) -> dict:
    """The run being served: dataset, task, labels, headline metric, example texts, measurement environment."""
    return {"name": catalog.name, "dataset": catalog.dataset, "task": catalog.task, "label_names": catalog.label_names,
            "metric": catalog.metric, "examples": catalog.examples, "environment": catalog.environment,
            "has_plot": catalog.plot is not None}


@router.get("/models", response_model=ModelsResponse)
def list_models(catalog: CatalogDep) -> dict:
    """Every model of the run, teacher first, with its held-out leaderboard numbers."""
    return {"task": catalog.task, "label_names": catalog.label_names, "models": catalog.model_infos()}


@router.get("/leaderboard", response_model=list[LeaderboardRow])
def leaderboard(catalog: CatalogDep) -> list[dict]:
    """The run's whole held-out leaderboard (empty before `bertdistill evaluate`), served models or not."""
    return catalog.leaderboard_rows()


@router.post("/predict", response_model=PredictResponse, responses=errors(400, 413, 415, 422))
def predict(body: PredictRequest, catalog: CatalogDep) -> dict:
    """One text or a batch through every model (or the named ones): labels, probabilities, time, fidelity."""
    try:
        results = catalog.predict(body.models, body.batch, body.compare)
    except UnknownModel as err:
        raise HTTPException(422, str(err)) from None
    return {"task": catalog.task, "label_names": catalog.label_names, "results": results}


@router.post("/models/{name}/predict", response_model=ModelResult, responses=errors(400, 404, 413, 415, 422))
async def predict_with(name: ModelName, body: TextsRequest, catalog: CatalogDep) -> dict:
    """One model alone, without running the teacher: the fast path for putting a student behind an endpoint."""
    if catalog.is_quick(name, len(body.batch)):
        return _predict_one(catalog, name, body.batch)
    return await run_in_threadpool(_predict_one, catalog, name, body.batch)


def _predict_one(catalog: Catalog, name: str, texts: list[str]) -> dict:
    try:
        return catalog.predict([name], texts, compare=False)[0]
    except UnknownModel as err:
        raise HTTPException(404, str(err)) from None


@router.get("/quality_vs_latency.svg", response_class=Response, responses={
    200: {"content": {"image/svg+xml": {}}, "description": "the chart, `width` px wide"}, **errors(404, 422)})
def quality_vs_latency_chart(catalog: CatalogDep, width: Annotated[int, Query(
        ge=240, le=2000, description="the width to lay the chart out for, in CSS pixels")] = DEFAULT_WIDTH) -> Response:
    """The leaderboard's quality-vs-latency chart, drawn for `width`: numbered dots, a legend, a tooltip per model."""
    svg = catalog.chart(width)
    if svg is None:
        raise HTTPException(404, "this run has no leaderboard yet; run `bertdistill evaluate`")
    return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)


@router.get("/quality_vs_latency.png", response_class=FileResponse, responses={
    200: {"content": {"image/png": {}}, "description": "the run's quality-vs-latency plot"}, **errors(404)})
def quality_vs_latency(catalog: CatalogDep) -> FileResponse:
    """The run's quality-vs-latency plot, as written by `bertdistill report`."""
    if catalog.plot is None:
        raise HTTPException(404, "this run has no quality_vs_latency.png; run `bertdistill report`")
    return FileResponse(catalog.plot, media_type="image/png")
