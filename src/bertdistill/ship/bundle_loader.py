"""Load this bundle and predict with it; needs numpy, and onnxruntime and tokenizers only for models that use them.

    import bundle
    model = bundle.load()                        # this file's folder; or bundle.load("path/to/bundle")
    model.predict(["what a lovely day"])         # one label per text (multilabel: a list of labels per text)
    model.predict_proba(["what a lovely day"])   # (n, k) float32 probabilities, columns in model.label_names

or from a shell: `python bundle.py "what a lovely day" ...` (no text: one per line from stdin) prints JSON.

`bundle.json` says what the model is:
- "tfidf": word and character n-gram TF-IDF into a linear layer, in numpy and `re` only (`tfidf_features.py`
  counts the n-grams exactly as scikit-learn's TfidfVectorizer counts them);
- "static": the mean of a token table's SIF-weighted rows into a linear layer, or a ReLU layer then a linear one
  (numpy, `tokenizers`);
- "onnx": a neural network in `model.onnx`, run by ONNX Runtime one text at a time (`tokenizers` for subwords);
- "fasttext": a supervised fastText model's matrices, run in numpy with fastText's own hashing of words, word
  n-grams and character n-grams;
- "ensemble": a weighted mean of the probabilities of the bundles in `members/`.
Subword students of a BERT-style tokenizer also ship `wordpiece.py`, through which one text is tokenized in Python
(the Rust tokenizer's ids, without its per-call overhead). Written by `bertdistill export`; nothing here imports
bertdistill, PyTorch or scikit-learn.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

FORMAT, VERSION = "bertdistill-bundle", 1
CACHE_TOKENS = 200_000  # fastText tokens whose rows and hash are remembered (then forgotten all at once)


def load(folder: str | Path | None = None) -> "Model":
    """The model of the bundle in `folder` (default: the folder of this file)."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    spec = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
    if (spec.get("format"), spec.get("version")) != (FORMAT, VERSION):
        raise ValueError(f"{folder}: not a {FORMAT} version {VERSION} folder")
    return Model(spec, PREDICTORS[spec["model"]](folder, spec))


class Model:
    """Probabilities and labels: softmax and the top class, or for multilabel a sigmoid per label and every label
    whose probability reaches its threshold (tuned on val by the evaluation; 0.5 where it was not run)."""

    def __init__(self, spec: dict, predictor):
        self.name, self.label_names = spec["name"], spec["label_names"]
        self.multilabel = spec["task"] == "multilabel"
        self.thresholds = np.asarray(spec["thresholds"]) if self.multilabel else None
        self.predictor = predictor

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("give a list of texts, not one string")
        return self.predictor.predict_proba(list(texts))

    def predict(self, texts: list[str]) -> list[str] | list[list[str]]:
        probs = self.predict_proba(texts)
        if not self.multilabel:
            return [self.label_names[i] for i in probs.argmax(axis=1)]
        return [[name for name, on in zip(self.label_names, row >= self.thresholds) if on] for row in probs]


class Student:
    """Base of the single models: (n, k) float32 logits -> probabilities."""

    def __init__(self, spec: dict):
        self.n_labels, self.multilabel = len(spec["label_names"]), spec["task"] == "multilabel"

    def logits(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        logits = self.logits(texts)
        if self.multilabel:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


class TfidfLinear(Student):
    """logits = W . [tfidf_1(text), tfidf_2(text), ...] + b: each vectorizer's row l2-normalised on its own, by
    `tfidf_features.py` (shipped beside this file: scikit-learn's features, n-grams looked up as packed integers)."""

    def __init__(self, folder: Path, spec: dict):
        super().__init__(spec)
        features = _shipped_module(folder, "tfidf_features")
        arrays = np.load(folder / "tfidf.npz", allow_pickle=False)
        vectorizers = json.loads((folder / "tfidf.json").read_text(encoding="utf-8"))
        self.analyzers = [features.SparseAnalyzer.from_params(v, v["vocabulary"], arrays[f"idf_{i}"])
                          for i, v in enumerate(vectorizers)]
        weight_rows = np.ascontiguousarray(arrays["coef"].astype(np.float64).T)  # (features, k), a row a feature
        offsets = np.cumsum([0] + [len(a.index) for a in self.analyzers])
        self.blocks = [weight_rows[start:end] for start, end in zip(offsets[:-1], offsets[1:])]  # per vectorizer
        self.bias = arrays["intercept"].astype(np.float64)

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), len(self.bias)), dtype=np.float32)
        for row, text in enumerate(texts):
            total = self.bias.copy()
            for analyzer, block in zip(self.analyzers, self.blocks):
                columns, values = analyzer.features(text)
                if len(columns):
                    total += values @ np.take(block, columns, axis=0)
            out[row] = total
        return out


class StaticEmbedding(Student):
    """x = (sum of the tokens' SIF-scaled table rows) / (sum of their SIF weights) . head + bias; with a hidden
    layer (head1, bias1 present), logits = relu(x) . head1 + bias1, else x. Computed by `folded_static.py`
    (shipped beside this file), as bertdistill computes it: the first layer folded into the table at load."""

    def __init__(self, folder: Path, spec: dict):
        super().__init__(spec)
        self.encode = encoder(folder, spec["encoder"])
        self.folded = _shipped_module(folder, "folded_static")
        arrays = np.load(folder / "static.npz", allow_pickle=False)
        layers = [(arrays[f"head{i}"], arrays[f"bias{i}"]) for i in ("", "1") if f"head{i}" in arrays]
        self.shares, self.output = self.folded.fold(arrays["scaled_table"], arrays["sif_weights"], layers)

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.n_labels), dtype=np.float32)
        for row, ids in enumerate(self.encode(texts)):
            out[row] = self.folded.logits(self.shares, self.output, ids)
        return out


class OnnxNetwork(Student):
    """model.onnx takes one unpadded text: input_ids (1, length) -> logits (1, k); a graph exported before
    2026-11-30 also takes an attention_mask (all ones)."""

    def __init__(self, folder: Path, spec: dict):
        import onnxruntime

        super().__init__(spec)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # a small model gains nothing from more
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.encode = encoder(folder, spec["encoder"])
        self.masked = "attention_mask" in {graph_input.name for graph_input in self.session.get_inputs()}

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.n_labels), dtype=np.float32)
        for row, ids in enumerate(self.encode(texts)):
            feed = {"input_ids": ids[None, :]}
            if self.masked:
                feed["attention_mask"] = np.ones_like(feed["input_ids"])
            out[row] = self.session.run(None, feed)[0][0]
        return out


class FastText(Student):
    """fastText's supervised prediction: the mean of the input-matrix rows of a line's words (or their character
    n-grams), word n-grams and end-of-line token, through the output matrix (softmax, or a sigmoid per label for
    one-vs-all). Ids are computed as fastText's Dictionary computes them, 32- and 64-bit overflow included."""

    def __init__(self, folder: Path, spec: dict):
        super().__init__(spec)
        arrays = np.load(folder / "fasttext.npz", allow_pickle=False)
        self.input, output = arrays["input"], arrays["output"]
        # fastText's rows are its training labels by frequency: put them in our order; a label it never saw in
        # training gets no row and probability 0 (a logit of -inf)
        self.output = np.zeros((self.n_labels, output.shape[1]), dtype=output.dtype)
        self.output[spec["label_order"]] = output
        self.unseen = np.setdiff1d(np.arange(self.n_labels), spec["label_order"])
        self.words = {word: i for i, word in enumerate(json.loads((folder / "words.json").read_text("utf-8")))}
        self.pattern = re.compile(spec["pattern"])
        self.minn, self.maxn, self.word_ngrams, self.bucket = spec["minn"], spec["maxn"], spec["word_ngrams"], spec[
            "bucket"]
        self.tokens: dict[str, tuple[list[int], int]] = {}  # token -> its input rows and its hash, computed once

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.n_labels), dtype=np.float32)
        for row, text in enumerate(texts):
            line = " ".join(self.pattern.sub(r" \1 ", text.lower()).replace("\0", " ").split())
            hidden = self.input[self.ids(line.split(" ") + ["</s>"] if line else ["</s>"])].mean(axis=0)
            out[row] = self.output @ hidden  # their softmax (sigmoid for one-vs-all) is fastText's probability
        out[:, self.unseen] = -np.inf
        return out

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not self.multilabel:
            return super().predict_proba(texts)
        # one-vs-all: fastText's sigmoid is a lookup table of 513 steps over [-8, 8] (float32), 0 / 1 outside
        x = self.logits(texts)
        steps = ((np.clip(x, -8, 8) + np.float32(8)) * np.float32(512) / np.float32(8) / np.float32(2)).astype(np.int64)
        table = 1.0 / (1.0 + np.exp(-(np.arange(513, dtype=np.float32) * np.float32(16) / np.float32(512) - 8)))
        inside = table.astype(np.float32)[np.clip(steps, 0, 512)]
        return np.where(x < -8, 0.0, np.where(x > 8, 1.0, inside)).astype(np.float32)

    def ids(self, tokens: list[str]) -> list[int]:
        ids, hashes = [], []
        for token in tokens:
            if token.startswith("__label__"):  # fastText reads such a token as a label, not a word
                continue
            known = self.tokens.get(token)
            if known is None:
                if len(self.tokens) >= CACHE_TOKENS:
                    self.tokens.clear()
                known = self.tokens[token] = (self.own_rows(token), _signed32(_fnv1a(token.encode("utf-8"))))
            ids += known[0]
            hashes.append(known[1])
        for i in range(len(hashes)):  # word n-grams: fastText's 64-bit rolling combination of word hashes
            h = hashes[i] % 2 ** 64
            for j in range(i + 1, min(len(hashes), i + self.word_ngrams)):
                h = (h * 116049371 + hashes[j]) % 2 ** 64
                ids.append(len(self.words) + h % self.bucket)
        return ids

    def own_rows(self, token: str) -> list[int]:
        """A word's row and its character n-grams' (when maxn > 0); out of the vocabulary, only the n-grams'."""
        wid = self.words.get(token, -1)
        ngrams = [] if token == "</s>" or self.maxn <= 0 else self.char_ngrams(token)
        return [wid, *ngrams] if wid >= 0 else ngrams

    def char_ngrams(self, word: str) -> list[int]:
        """Bucket ids of the minn..maxn character n-grams of <word> (UTF-8 characters, not bytes)."""
        data, ids = f"<{word}>".encode("utf-8"), []
        for i in range(len(data)):
            if data[i] & 0xC0 == 0x80:
                continue
            j, n = i, 1
            while j < len(data) and n <= self.maxn:
                j += 1
                while j < len(data) and data[j] & 0xC0 == 0x80:
                    j += 1
                if n >= self.minn and not (n == 1 and (i == 0 or j == len(data))):
                    ids.append(len(self.words) + _fnv1a(data[i:j]) % self.bucket)
                n += 1
        return ids


def _fnv1a(data: bytes) -> int:
    """fastText's 32-bit FNV-1a, each byte sign-extended first (its chars are signed)."""
    h = 2166136261
    for byte in data:
        h = ((h ^ (byte | 0xFFFFFF00 if byte & 0x80 else byte)) * 16777619) & 0xFFFFFFFF
    return h


def _signed32(value: int) -> int:
    return value - 2 ** 32 if value >= 2 ** 31 else value


class Ensemble:
    """sum_i weight_i * probabilities of member i (weights sum to 1)."""

    def __init__(self, folder: Path, spec: dict):
        self.members = [(member["weight"], load(folder / member["folder"])) for member in spec["members"]]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        total = sum(weight * model.predict_proba(texts).astype(np.float64) for weight, model in self.members)
        return np.asarray(total, dtype=np.float32)


def encoder(folder: Path, spec: dict):
    """texts -> list of int64 id arrays, as the student encoded its training texts."""
    if spec["kind"] == "subword":  # the pretrained tokenizer (truncation stored in it), then compact ids
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        id_map = np.load(folder / "token_ids.npz", allow_pickle=False)["id_map"]
        single = _single_text_ids(folder, tokenizer, spec["max_length"])

        def encode_subwords(texts: list[str]) -> list[np.ndarray]:
            if len(texts) == 1 and single is not None:  # the same ids, without the Rust call's overhead
                return [id_map[single(texts[0])]]
            return [id_map[encoding.ids] for encoding in tokenizer.encode_batch(texts)]

        return encode_subwords
    # "word": lower-cased words and punctuation, the first max_length kept, unknown ones (and an empty text) UNK
    words = json.loads((folder / "words.json").read_text(encoding="utf-8"))
    index, unknown = {word: i for i, word in enumerate(words)}, spec["unknown_id"]
    tokens, max_length = re.compile(spec["pattern"]).findall, spec["max_length"]

    def encode(texts: list[str]) -> list[np.ndarray]:
        ids = ([index.get(token, unknown) for token in tokens(text.lower())[:max_length]] for text in texts)
        return [np.array(row or [unknown], dtype=np.int64) for row in ids]

    return encode


def _single_text_ids(folder: Path, tokenizer, max_length: int):
    """text -> ids through wordpiece.py (WordPiece in Python, cached per word: a tweet in ~5-10 µs where the Rust
    tokenizer's call costs ~50), for a bundle that ships it; else None."""
    if not (folder / "wordpiece.py").exists():
        return None
    return _shipped_module(folder, "wordpiece").single_text_ids(tokenizer, max_length)


def _shipped_module(folder: Path, name: str):
    """The module `name`.py that bertdistill shipped in the bundle folder (standard library and numpy only)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bundle_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREDICTORS = {"tfidf": TfidfLinear, "static": StaticEmbedding, "onnx": OnnxNetwork, "fasttext": FastText,
              "ensemble": Ensemble}


def main(texts: list[str]) -> None:
    model = load()
    texts = texts or [line.rstrip("\n") for line in sys.stdin]
    rows = zip(texts, model.predict(texts), model.predict_proba(texts).tolist())
    print(json.dumps([{"text": text, "label": label, "probabilities": dict(zip(model.label_names, probs))}
                      for text, label, probs in rows], ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
