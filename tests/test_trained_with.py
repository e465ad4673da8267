"""What retrains a saved student: `changes_since_training` compares its trained_with.json with the settings now."""
from __future__ import annotations

from bertdistill.config import StudentsConfig
from bertdistill.pipeline import UNKNOWN_CHANGE, changes_since_training, settings_key

FIELDS = {"seed", "neural"}


def _settings(students: StudentsConfig, teacher: str = "teacher-a", texts: str = "texts-a") -> dict:
    return {"students": students.model_dump(mode="json", include=FIELDS), "teacher": teacher, "texts": texts}


def _record(settings: dict) -> dict:
    return {"key": settings_key(settings), "settings": settings, "train_seconds": 1.0}


DEFAULTS = {"students": StudentsConfig().model_dump(mode="json", include=FIELDS)}


def test_the_same_settings_teacher_and_texts_change_nothing():
    settings = _settings(StudentsConfig(seed=3))
    assert changes_since_training(_record(settings), settings, DEFAULTS) == []


def test_each_change_is_named():
    then = _settings(StudentsConfig(seed=3, neural={"dropout": 0.1}))
    now = _settings(StudentsConfig(seed=4, neural={"dropout": 0.3}), teacher="teacher-b")
    assert changes_since_training(_record(then), now, DEFAULTS) == ["students.neural.dropout", "students.seed",
                                                                     "teacher"]
    assert changes_since_training(_record(then), _settings(StudentsConfig(seed=3, neural={"dropout": 0.1}),
                                                           texts="texts-b"), DEFAULTS) == ["texts"]


def test_a_setting_added_since_training_counts_only_away_from_its_default():
    """A student saved by an older bertdistill lacks the settings added since: at their defaults they mean what it
    was trained with, so it is kept; set to something else, they retrain it."""
    now = _settings(StudentsConfig())
    older = _settings(StudentsConfig())
    del older["students"]["neural"]["precision"]
    assert settings_key(older) != settings_key(now)
    assert changes_since_training(_record(older), now, DEFAULTS) == []
    bf16 = _settings(StudentsConfig(neural={"precision": "bf16"}))
    assert changes_since_training(_record(older), bf16, DEFAULTS) == ["students.neural.precision"]


def test_a_setting_removed_since_training_counts():
    then = _settings(StudentsConfig())
    then["students"]["neural"]["retired_option"] = 1
    assert changes_since_training(_record(then), _settings(StudentsConfig()), DEFAULTS) == [
        "students.neural.retired_option"]


def test_a_record_without_settings_is_judged_by_its_key_alone():
    settings = _settings(StudentsConfig())
    assert changes_since_training({"key": settings_key(settings)}, settings, DEFAULTS) == []
    assert changes_since_training({"key": "0123456789abcdef"}, settings, DEFAULTS) is UNKNOWN_CHANGE
    assert changes_since_training({}, settings, DEFAULTS) is UNKNOWN_CHANGE
