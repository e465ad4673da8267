"""`bertdistill serve RUN_DIR`: a web page and a JSON API comparing the teacher and every student on your text."""
from __future__ import annotations

from pathlib import Path

from bertdistill.serve.app import app_for_run, create_app
from bertdistill.serve.catalog import Catalog


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True) -> None:
    """Load the run once, then serve it with uvicorn until interrupted."""
    import uvicorn

    app = app_for_run(run_dir)
    print(f"serving {run_dir} ({len(app.state.catalog.models)} models) on http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")


__all__ = ["Catalog", "app_for_run", "create_app", "serve"]
