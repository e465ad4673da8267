"""Run configuration: TOML files, built-in configs, dotted overrides, unknown keys and invalid values."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bertdistill.config import (
    DataConfig,
    RunConfig,
    apply_overrides,
    builtin_configs,
    config_from_dict,
    load_config,
)
from bertdistill.errors import BertdistillError

MINIMAL = """
name = "mini"

[data]
format = "csv"
path = "/tmp/somewhere/data.csv"
"""


@pytest.fixture
def toml(tmp_path):
    def write(text: str = MINIMAL, name: str = "run.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


def error(source, overrides=()) -> str:
    with pytest.raises(BertdistillError) as caught:
        load_config(source, list(overrides))
    message = str(caught.value)
    assert "\n" not in message
    return message


def dict_error(raw: dict) -> str:
    with pytest.raises(BertdistillError) as caught:
        config_from_dict(raw, origin="cfg.toml")
    message = str(caught.value)
    assert message.startswith("cfg.toml: ") and "\n" not in message
    return message


# ---------------------------------------------------------------- reading


def test_minimal_config_gets_defaults(toml):
    config = load_config(toml())
    assert isinstance(config, RunConfig)
    assert config.name == "mini"
    assert config.data.format == "csv" and config.data.path == "/tmp/somewhere/data.csv"
    assert config.data.label_column == "label" and config.data.label_columns is None
    assert config.data.val_size == 0.1 and config.data.test_size == 0.2 and config.data.seed == 13
    assert config.teacher.epochs == 3 and config.teacher.device == "auto"
    assert config.students.tfidf.min_df == 2
    assert config.eval.threads == 1


def test_config_is_frozen(toml):
    config = load_config(toml())
    with pytest.raises(ValidationError):
        config.teacher.epochs = 5


def test_full_config_round_trips_through_dict(toml):
    config = load_config(toml(MINIMAL + """
[teacher]
epochs = 1
learning_rate = 3e-5

[students]
include = ["tfidf-lr"]
trials = 2

[students.tfidf]
char_ngram_max = 4

[eval]
latency_texts = 50
"""))
    assert config.teacher.epochs == 1 and config.teacher.learning_rate == 3e-5
    assert config.students.include == ["tfidf-lr"] and config.students.tfidf.char_ngram_max == 4
    assert config.eval.latency_texts == 50
    again = config_from_dict(config.model_dump(mode="json"))
    assert again == config


@pytest.mark.parametrize("name", ["tweeteval-hate", "tweeteval-offensive", "tweeteval-emotion", "jigsaw-toxic"])
def test_builtin_configs_load_by_name(name):
    assert name in builtin_configs()
    config = load_config(name)
    assert config.name == name


def test_every_builtin_config_is_valid():
    for name in builtin_configs():
        assert load_config(name).name == name


def test_builtin_jigsaw_is_multilabel():
    data = load_config("jigsaw-toxic").data
    assert data.format == "csv" and data.text_column == "comment_text" and len(data.label_columns) == 6


def test_config_not_found_lists_builtins(tmp_path):
    message = error(tmp_path / "nope.toml")
    assert "nope.toml" in message and "not found" in message and "tweeteval-hate" in message


def test_invalid_toml_names_file(toml):
    path = toml("name = \n[data\n")
    message = error(path)
    assert message.startswith(f"{path}: not valid TOML")


def test_non_utf8_toml(toml, tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    assert error(path).startswith(f"{path}: not valid TOML")


# ---------------------------------------------------------------- overrides


def test_overrides_set_dotted_keys(toml):
    config = load_config(toml(), [
        "teacher.epochs=1",
        "teacher.learning_rate = 1e-4",
        "data.path=/other/place/file.csv",  # not TOML: taken as a bare string
        'data.label_names=["neg", "pos"]',
        "students.tfidf.min_df=3",
        "students.include=['tfidf-lr']",
        "name=renamed",
        'data.download_url="http://x/y=z"',  # '=' inside the value
        "data.max_train=50",
        "teacher.device=cpu",
    ])
    assert config.teacher.epochs == 1 and config.teacher.learning_rate == 1e-4
    assert config.data.path == "/other/place/file.csv"
    assert config.data.label_names == ["neg", "pos"]
    assert config.students.tfidf.min_df == 3 and config.students.include == ["tfidf-lr"]
    assert config.name == "renamed"
    assert config.data.download_url == "http://x/y=z"
    assert config.data.max_train == 50 and config.teacher.device == "cpu"


def test_override_creates_missing_section(toml):
    config = load_config(toml(), ["eval.threads=2"])
    assert config.eval.threads == 2


def test_later_override_wins(toml):
    assert load_config(toml(), ["teacher.epochs=1", "teacher.epochs=4"]).teacher.epochs == 4


def test_apply_overrides_on_raw_dict():
    raw = {"data": {"path": "p"}}
    apply_overrides(raw, ["data.seed=5", "teacher.reuse=/models/t"])
    assert raw == {"data": {"path": "p", "seed": 5}, "teacher": {"reuse": "/models/t"}}


def test_override_into_an_optional_section_saved_as_null():
    """A run's config.json holds `"loss": null` when no loss was set; `--set students.neural.loss.kind=mse` on it
    (variants, `bertdistill students` without a config) sets that section instead of failing."""
    raw = {"students": {"neural": {"loss": None}}}
    apply_overrides(raw, ["students.neural.loss.kind=mse"])
    assert raw == {"students": {"neural": {"loss": {"kind": "mse"}}}}
    assert config_from_dict({"name": "x", "data": {"path": "p"}, **raw}, "test").students.neural.loss.kind == "mse"


@pytest.mark.parametrize("override", ["teacher.epochs", "=3", "  =x"])
def test_malformed_override(toml, override):
    message = error(toml(), [override])
    assert f"override '{override}'" in message and "section.key=value" in message


def test_override_through_a_value_is_not_a_section(toml):
    message = error(toml(), ["name.first=1"])
    assert "override 'name.first=1'" in message and "'name' is not a section" in message


# ---------------------------------------------------------------- unknown keys, with a suggestion


@pytest.mark.parametrize("override,key,suggestion", [
    ("teacher.epoch=1", "teacher.epoch", "epochs"),
    ("data.pth=x", "data.pth", "path"),
    ("students.tfidf.min_dff=2", "students.tfidf.min_dff", "min_df"),
    ("teachr.epochs=1", "teachr", "teacher"),
    ("nmae=x", "nmae", "name"),
    ("eval.thread=2", "eval.thread", "threads"),
])
def test_unknown_override_key_suggests(toml, override, key, suggestion):
    path = toml()
    message = error(path, [override])
    assert message == f"{path}: unknown config key '{key}' (did you mean '{suggestion}'?)"


def test_unknown_key_in_file_suggests(toml):
    path = toml(MINIMAL + "\n[teacher]\nlerning_rate = 1e-5\n")
    assert error(path) == f"{path}: unknown config key 'teacher.lerning_rate' (did you mean 'learning_rate'?)"


def test_unknown_key_without_close_match(toml):
    path = toml()
    assert error(path, ["teacher.zzzzzz=1"]) == f"{path}: unknown config key 'teacher.zzzzzz'"


def test_unknown_key_below_a_non_section(toml):
    # data.hf_splits is a plain dict field, data.seed a scalar: no suggestion machinery should crash
    message = error(toml(), ["data.seed.x=1"])
    assert "data.seed" in message


# ---------------------------------------------------------------- invalid values


@pytest.mark.parametrize("override,key,got", [
    ("teacher.epochs=0", "teacher.epochs", "0"),
    ("teacher.epochs=abc", "teacher.epochs", "'abc'"),
    ("data.format=xml", "data.format", "'xml'"),
    ("data.val_size=1.5", "data.val_size", "1.5"),
    ("data.test_size=0", "data.test_size", "0"),
    ("data.max_train=1", "data.max_train", "1"),
    ("teacher.device=tpu", "teacher.device", "'tpu'"),
    ("teacher.max_length=4", "teacher.max_length", "4"),
    ("students.tfidf.max_features=10", "students.tfidf.max_features", "10"),
    ("students.include=3", "students.include", "3"),
    ("students.fasttext_ftz_cutoff=100", "students.fasttext_ftz_cutoff", "100"),
])
def test_invalid_value_names_key_and_value(toml, override, key, got):
    path = toml()
    message = error(path, [override])
    assert message.startswith(f"{path}: config key '{key}': ")
    assert message.endswith(f"(got {got})")


def test_missing_required_key():
    assert dict_error({"name": "x", "data": {"format": "csv"}}) == "cfg.toml: missing config key 'data.path'"
    assert dict_error({"name": "x"}) == "cfg.toml: missing config key 'data'"


def test_class_f1_needs_metric_classes():
    message = dict_error({"data": {"path": "p", "metric": "class_f1"}})
    assert "data" in message and "metric_classes" in message


def test_label_columns_needs_two():
    message = dict_error({"data": {"path": "p", "label_columns": ["toxic"]}})
    assert "label_columns needs at least two" in message


def test_dataconfig_direct_construction():
    config = DataConfig(path="x", format="jsonl", label_columns=["a", "b"])
    assert config.label_columns == ["a", "b"]
    with pytest.raises(ValidationError):
        DataConfig(path="x", nonsense=1)


def test_hf_splits_keys_are_our_split_names(toml):
    message = error(toml(), ["data.hf_splits.validation=validation"])
    assert "hf_splits keys must be train, val or test, got validation" in message
    config = load_config(toml(), ['data.hf_splits={train="tr", test="te"}'])
    assert config.data.hf_splits == {"train": "tr", "test": "te"}
