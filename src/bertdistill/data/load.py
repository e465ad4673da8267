"""From a DataConfig to a validated Dataset: find the files, read them, encode labels, make missing splits."""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from bertdistill.config import DataConfig
from bertdistill.core import files
from bertdistill.data.dataset import Dataset, Split, stratified_split, subsample
from bertdistill.data.labels import check_trainable, encode_multiclass, encode_multilabel, multiclass_vocabulary
from bertdistill.data.readers import RawSplit, read_hf, read_table, read_tweeteval
from bertdistill.errors import BertdistillError
from bertdistill.names import Task

DATA_DIR_ENV = "BERTDISTILL_DATA_DIR"
CACHE_DIR = Path(os.environ.get("BERTDISTILL_CACHE", Path.home() / ".cache" / "bertdistill"))
TWEETEVAL_FILES = ["mapping.txt"] + [f"{s}_{kind}.txt" for s in ("train", "val", "test") for kind in ("text", "labels")]


def data_dirs(config: DataConfig) -> list[Path]:
    """Where local copies are looked for, in order: config, environment, ./data, ../shared/data, the cache."""
    candidates = [config.data_dir, os.environ.get(DATA_DIR_ENV), "data", "../shared/data", CACHE_DIR / "data"]
    return [Path(c) for c in candidates if c]


def locate(config: DataConfig) -> Path:
    """The dataset's local path; downloaded from `download_url` when no local copy exists."""
    path = Path(config.path).expanduser()
    if path.is_absolute():
        if path.exists():
            return path
        raise BertdistillError(f"{path}: no such file or folder")
    for folder in data_dirs(config):
        if (folder / path).exists():
            return folder / path
    if config.download_url:
        return download(config, CACHE_DIR / "data" / path)
    looked = ", ".join(str(folder / path) for folder in data_dirs(config))
    raise BertdistillError(f"dataset '{config.path}' not found (looked in: {looked}); put a copy in one of "
                           f"these places or set {DATA_DIR_ENV}")


def locate_root(config: DataConfig) -> Path:
    """The absolute folder the dataset's relative `path` was found in (its own folder for an absolute path)."""
    found = locate(config).resolve()
    path = Path(config.path).expanduser()
    return found if path.is_absolute() else found.parents[len(path.parts) - 1]


def download(config: DataConfig, target: Path) -> Path:
    """Fetch the dataset's files from its public source into `target`, all or nothing."""
    names = TWEETEVAL_FILES if config.format == "tweeteval" else [
        name for name in (config.train_file, config.val_file, config.test_file) if name]
    if not names:
        raise BertdistillError(f"dataset '{config.path}' is not on this machine and data.download_url needs "
                               "data.train_file (and val_file / test_file if the source has them) to know "
                               f"which {config.format.upper()} files to fetch")
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    for name in names:
        url = f"{config.download_url.rstrip('/')}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                files.write_bytes(partial / name, response.read())
        except (urllib.error.URLError, OSError) as err:
            raise BertdistillError(f"dataset '{config.path}' is not on this machine and downloading {url} failed "
                                   f"({getattr(err, 'reason', err)}); put a copy under {DATA_DIR_ENV} "
                                   "or ../shared/data") from None
    partial.rename(target)
    return target


def load_dataset(config: DataConfig) -> Dataset:
    """Read, encode and split the configured data. The test split is only ever read for evaluation."""
    label_columns = config.label_columns or [config.label_column]
    multilabel = config.label_columns is not None
    if config.format == "hf":
        raws, names = read_hf(config.path, config.hf_config, config.hf_splits, config.text_column, label_columns)
    elif config.format == "tweeteval":
        raws, names = read_tweeteval(locate(config))
    else:
        raws, names = _read_tables(locate(config), config, label_columns), None
    if "train" not in raws:
        raise BertdistillError(f"{config.path}: no train split found")
    for raw in raws.values():
        if not raw.texts:
            raise BertdistillError(f"{raw.source}: no rows")
    names = config.label_names or names
    if multilabel:
        names = list(label_columns)
        encoded = {split: encode_multilabel(raw, label_columns) for split, raw in raws.items()}
    else:
        names, mapping = multiclass_vocabulary(raws["train"], names)
        train_ids = encode_multiclass(raws["train"], mapping, "train", None)
        seen = set(np.unique(train_ids).tolist())
        encoded = {split: (train_ids if split == "train" else encode_multiclass(raw, mapping, split, seen))
                   for split, raw in raws.items()}
    check_trainable(encoded["train"], names, raws["train"].source)
    splits = {split: Split(list(raws[split].texts), encoded[split]) for split in raws}
    return _finish(config, Task.MULTILABEL if multilabel else Task.MULTICLASS, names, splits)


def _read_tables(path: Path, config: DataConfig, label_columns: list[str]) -> dict[str, RawSplit]:
    if path.is_file():
        return {"train": read_table(path, config.format, config.text_column, label_columns)}
    files = {"train": config.train_file, "val": config.val_file, "test": config.test_file}
    raws = {}
    for split, name in files.items():
        file = path / (name or f"{split}.{config.format}")
        if name and not file.exists():
            raise BertdistillError(f"{file}: file not found (data.{split}_file)")
        if file.exists():
            raws[split] = read_table(file, config.format, config.text_column, label_columns)
    return raws


def _finish(config: DataConfig, task: str, names: list[str], splits: dict[str, Split]) -> Dataset:
    """Make missing splits by seeded stratified splitting of train; optionally subsample for quick runs."""
    train = splits["train"]
    if "test" not in splits:
        train, splits["test"] = stratified_split(train, config.test_size, config.seed, "data.test_size")
    if "val" not in splits:
        train, splits["val"] = stratified_split(train, config.val_size, config.seed, "data.val_size")
    train = subsample(train, config.max_train, config.seed, "data.max_train")
    val = subsample(splits["val"], config.max_eval, config.seed, "data.max_eval")
    test = subsample(splits["test"], config.max_eval, config.seed, "data.max_eval")
    _check_train_covers(train, names)
    return Dataset(config.path, task, names, train, val, test)


def _check_train_covers(train: Split, names: list[str]) -> None:
    """After splitting and subsampling, every class must still have train rows (a model outputs all of them)."""
    if train.labels.ndim == 1:
        lost = [name for i, name in enumerate(names) if not np.any(train.labels == i)]
    else:
        lost = [name for j, name in enumerate(names) if train.labels[:, j].min() == train.labels[:, j].max()]
    if lost:
        raise BertdistillError(f"after splitting, train has no examples to learn {', '.join(map(repr, lost))} "
                               "from; raise data.max_train or data.val_size / test_size, or add data")
