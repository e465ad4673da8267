"""One `fasttext.train_supervised` call in a child process, run by fasttext_lib.train.

    python -m bertdistill.students.fasttext_child SETTINGS_JSON MODEL_OUT

The binding can hang inside training (its main thread waiting on workers that have ended, seen on a busy machine),
so the parent runs each training here, under a time limit, and reads the model back from MODEL_OUT and the settings
it was trained with from MODEL_OUT.json: fastText's model file leaves out the learning rate, so a model loaded back
reports the default one, not the one autotune chose. Exit status 3 with the message on stderr when training raises
(e.g. "Encountered NaN").
"""
from __future__ import annotations

import json
import sys

# the hyper-parameters autotune chooses (dsub matters to quantization only)
TUNED = ("lr", "dim", "ws", "epoch", "minCount", "wordNgrams", "minn", "maxn", "bucket", "dsub", "loss")


def tuned_settings(args) -> dict:
    """The TUNED fields of a model's `f.getArgs()`, the loss by its name ("softmax", "ova")."""
    return {name: (str(value).split(".")[-1] if name == "loss" else value)
            for name in TUNED for value in [getattr(args, name)]}


def main(argv: list[str]) -> int:
    import fasttext

    settings, out = json.loads(argv[0]), argv[1]
    try:
        model = fasttext.train_supervised(**settings)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 3
    model.save_model(out)
    with open(f"{out}.json", "w", encoding="utf-8") as file:
        json.dump(tuned_settings(model.f.getArgs()), file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
