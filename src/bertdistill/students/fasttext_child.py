"""One `fasttext.train_supervised` call in a child process, run by fasttext_lib.train.

    python -m bertdistill.students.fasttext_child SETTINGS_JSON MODEL_OUT

The binding can hang inside training (its main thread waiting on workers that have ended, seen on a busy machine),
so the parent runs each training here, under a time limit, and reads the model back from MODEL_OUT. Exit status 3
with the message on stderr when training raises (e.g. "Encountered NaN").
"""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    import fasttext

    settings, out = json.loads(argv[0]), argv[1]
    try:
        model = fasttext.train_supervised(**settings)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 3
    model.save_model(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
