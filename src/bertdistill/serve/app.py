"""Build the FastAPI app for one run directory: the JSON API under /api, the page at /, its files under /static.

The run's models are loaded once, here, and shared by every request through `app.state.catalog`.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from bertdistill.serve.catalog import Catalog
from bertdistill.serve.guards import RequestGuard, install_error_handlers
from bertdistill.serve.routes import router
from bertdistill.serve.schemas import MAX_BODY_BYTES, MODEL_NAME_MARK

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {  # the page loads nothing from elsewhere and runs no inline script
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(catalog: Catalog) -> FastAPI:
    """The app serving an already loaded run (see `app_for_run` to load one from its directory)."""
    app = FastAPI(title=f"bertdistill: {catalog.name}", version="1",
                  description=f"Teacher and students of the run `{catalog.name}` ({catalog.dataset}, "
                              f"{catalog.task}) side by side: predictions, server-side time, fidelity to the "
                              "teacher. The page is at `/`.")
    app.state.catalog = catalog
    app.add_middleware(RequestGuard, max_bytes=MAX_BODY_BYTES)
    install_error_handlers(app)
    app.include_router(router, prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    _list_model_names(app, list(catalog.models))
    return app


def app_for_run(run_dir: Path) -> FastAPI:
    return create_app(Catalog.load(Path(run_dir)))


def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


def _list_model_names(app: FastAPI, names: list[str]) -> None:
    """Give every model-name field of the OpenAPI schema the run's names as an enum (for /docs and fuzzers)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            _add_enum(generate(), names)
        return app.openapi_schema

    app.openapi = openapi


def _add_enum(node, names: list[str]) -> None:
    if isinstance(node, dict):
        if node.pop(MODEL_NAME_MARK, False):
            node["enum"] = names
        for value in node.values():
            _add_enum(value, names)
    elif isinstance(node, list):
        for value in node:
            _add_enum(value, names)
