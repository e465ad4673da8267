"""bertdistill: distill a fine-tuned BERT-class teacher into small, fast students and compare them all.

`bertdistill.load(run_dir, name)` returns any trained model of a run (see `bertdistill.ship.api`). Importing the
package is light: PyTorch, transformers and scikit-learn are imported when a model that needs them loads.
"""
from __future__ import annotations


def load(run_dir, name: str | None = None):
    """The model `name` of the run in `run_dir` (a student, ensemble, or teacher row), or the recommended one:
    among students and ensembles, the best val score, ties within half a point going to the fastest."""
    from bertdistill.ship.api import load as load_model

    return load_model(run_dir, name)
