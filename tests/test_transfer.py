"""The transfer set: Tang et al. augmentation (seeded, probabilities, samples, dedup, POS kept), unlabelled corpora
and their bad input, the [transfer] config, the saved set, and the label + students stages training on it."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bertdistill import transfer
from bertdistill.config import (
    CorpusConfig,
    DataConfig,
    TransferConfig,
    config_from_dict,
)
from bertdistill.errors import BertdistillError
from bertdistill.transfer import (
    AugmentParams,
    augment,
    augment_words,
    build_transfer_set,
    read_corpus,
    split_word,
)

TEXTS = ["The coach watched the match at the stadium today", "I really love spicy pizza and pasta!",
         "My new laptop has a terrible battery", "We saw the team win again yesterday", "short one"]
DATA = DataConfig(path="unused")


def params(p_mask=0.0, p_pos=0.0, p_ng=0.0, n=4, seed=7) -> AugmentParams:
    return AugmentParams(p_mask, p_pos, p_ng, n, seed)


# --- augmentation ----------------------------------------------------------------------------------------------------

def test_augmentation_is_reproducible_by_seed():
    tagger = transfer.load_tagger()
    first = augment(TEXTS, params(0.2, 0.2 if tagger else 0, 0.3, 6), "[MASK]", tagger)
    assert first == augment(TEXTS, params(0.2, 0.2 if tagger else 0, 0.3, 6), "[MASK]", tagger)
    assert first != augment(TEXTS, params(0.2, 0.2 if tagger else 0, 0.3, 6, seed=8), "[MASK]", tagger)


def test_a_texts_samples_do_not_depend_on_the_other_texts():
    alone = augment(TEXTS[:1], params(0.3, n=5), "[MASK]", None)
    with_others = augment(TEXTS[:1] + ["something else entirely here"], params(0.3, n=5), "[MASK]", None)
    assert with_others[:len(alone)] == alone


def test_zero_probabilities_leave_the_text_unchanged_and_add_nothing():
    words = TEXTS[0].split()
    rng = np.random.default_rng(0)
    assert augment_words(words, [None] * len(words), params(), "[MASK]", None, rng) == TEXTS[0]
    assert augment(TEXTS + ["two  spaces"], params(n=5), "[MASK]", None) == []  # copies of originals are dropped


def test_p_mask_one_masks_every_word():
    samples = augment(TEXTS, params(p_mask=1.0, n=3), "[MASK]", None)
    assert sorted(samples) == sorted({" ".join(["[MASK]"] * len(t.split())) for t in TEXTS})


def test_n_samples_per_text_without_duplicates_or_originals():
    long_text = " ".join(f"w{i}" for i in range(40))  # 2^40 maskings: N distinct samples
    assert len(augment([long_text], params(p_mask=0.5, n=7), "[MASK]", None)) == 7
    short = augment(["a b"], params(p_mask=0.5, n=50), "[MASK]", None)
    assert sorted(short) == ["[MASK] [MASK]", "[MASK] b", "a [MASK]"]  # 50 draws, 3 distinct new texts
    samples = augment(TEXTS + TEXTS, params(p_mask=0.3, p_ng=0.5, n=10), "[MASK]", None)
    assert len(samples) == len(set(samples)) and not set(samples) & set(TEXTS)
    assert len(samples) <= 10 * 2 * len(TEXTS)  # each row has its own seed, repeated texts included


def test_ngram_sampling_keeps_a_contiguous_run_of_one_to_five_words():
    words = TEXTS[0].split()
    for sample in augment(TEXTS[:1], params(p_ng=1.0, n=40), "[MASK]", None):
        kept = sample.split()
        assert 1 <= len(kept) <= 5
        assert any(words[i:i + len(kept)] == kept for i in range(len(words)))


def test_split_word_finds_replaceable_cores():
    assert split_word("Pizza!") == ("", "Pizza", "!")
    assert split_word('"well-known",') == ('"', "well-known", '",')
    for word in ("@user", "#tag", "http://t.co/x", "don't", "42", "😀"):
        assert split_word(word) is None


def test_pos_guided_replacement_keeps_the_part_of_speech():
    pytest.importorskip("textblob")
    tagger = transfer.load_tagger()
    corpus = TEXTS + ["Happy dogs chase the birds.", "Old cats eat fresh fish", "Big birds see small cars",
                      "Red trees need more water", "New books want careful readers", "Many people love this game"]
    tagged = {text: transfer.tag_words(text.split(), tagger) for text in corpus}
    vocabulary = transfer.PosVocabulary.from_tagged((t.split(), tags) for t, tags in tagged.items())
    rng = np.random.default_rng(0)
    replaced = retagged_same = 0
    for text in corpus:
        for _ in range(5):
            sample = augment_words(text.split(), tagged[text], params(p_pos=1.0), "[MASK]", vocabulary, rng)
            new_tags = transfer.tag_words(sample.split(), tagger)
            for word, new, tag, new_tag in zip(text.split(), sample.split(), tagged[text], new_tags):
                if tag is None:
                    assert new == word  # mentions, hashtags, contractions ... are never replaced
                    continue
                prefix, core, suffix = split_word(new)
                assert split_word(word)[0::2] == (prefix, suffix)  # surrounding punctuation kept
                assert core in vocabulary.words[tag] or core.lower() in vocabulary.words[tag]  # same tag in train
                replaced += core.lower() != split_word(word)[1].lower()
                retagged_same += core.lower() != split_word(word)[1].lower() and new_tag == tag
    assert replaced > 50 and retagged_same / replaced >= 0.7  # in its new context the tagger mostly agrees
    samples = augment(corpus, params(p_pos=1.0, n=3), "[MASK]", tagger)
    assert samples and not any("[MASK]" in sample for sample in samples)


def test_without_a_tagger_pos_replacement_is_off_with_a_warning_or_an_error_if_asked_for(monkeypatch, capsys):
    monkeypatch.setattr(transfer.build, "load_tagger", lambda: None)
    config = TransferConfig(augment=True, samples_per_text=2)
    result = build_transfer_set(TEXTS, config, DATA, "[MASK]")
    assert "no part-of-speech tagger" in capsys.readouterr().out and result.has_extra
    assert transfer.resolve_params(config, tagger_installed=False, n_train=len(TEXTS)).p_pos == 0
    assert transfer.resolve_params(config, tagger_installed=True, n_train=len(TEXTS)).p_pos == 0.1
    with pytest.raises(BertdistillError, match=r"transfer.p_pos = 0.2 needs .*pip install textblob"):
        build_transfer_set(TEXTS, TransferConfig(augment=True, p_pos=0.2), DATA, "[MASK]")


# --- config ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transfer_section, key", [
    ({"p_mask": 1.5}, "transfer.p_mask"), ({"p_pos": -0.1}, "transfer.p_pos"), ({"p_ng": 2}, "transfer.p_ng"),
    ({"samples_per_text": 0}, "transfer.samples_per_text"), ({"p_mask": 0.6, "p_pos": 0.6}, "p_mask \\+ p_pos"),
    ({"max_texts": 0}, "transfer.max_texts"), ({"max_augmented": 0}, "transfer.max_augmented"),
    ({"corpora": [{"path": "x", "colum": "t"}]}, "colum"),
    ({"corpora": [{"path": "x", "format": "parquet"}]}, "transfer.corpora.0.format"), ({"p_mak": 0.1}, "p_mask")])
def test_bad_transfer_config_is_one_clear_error(transfer_section, key):
    with pytest.raises(BertdistillError, match=key):
        config_from_dict({"data": {"path": "x"}, "transfer": transfer_section})


def test_default_transfer_set_is_the_train_texts_and_augmentations_of_them_up_to_the_labeling_budget():
    config = config_from_dict({"data": {"path": "x"}, "transfer": {"max_augmented": 7}}).transfer
    assert config.augment is None and config.augments and transfer.needs_mask_token(config)
    result = build_transfer_set(TEXTS, config, DATA, "[MASK]")
    assert result.texts[:len(TEXTS)] == TEXTS and len(result.texts) == len(TEXTS) + 7
    assert result.counts["augmented"] == 7 <= result.counts["augmented_made"]
    unlimited = build_transfer_set(TEXTS, config.model_copy(update={"max_augmented": None}), DATA, "[MASK]")
    assert len(unlimited.texts) > len(result.texts) and set(result.texts) <= set(unlimited.texts)

    off = config_from_dict({"data": {"path": "x"}, "transfer": {"augment": False}}).transfer
    assert transfer.is_trivial(off) and build_transfer_set(TEXTS, off, DATA, None).texts == TEXTS


def test_with_a_corpus_augmentation_is_off_unless_asked_for(tmp_path):
    (tmp_path / "corpus.txt").write_text("an unlabelled text\nanother one\n")
    corpus = {"path": str(tmp_path / "corpus.txt")}
    config = config_from_dict({"data": {"path": "x"}, "transfer": {"corpora": [corpus]}}).transfer
    assert not config.augments and not transfer.needs_mask_token(config)
    assert build_transfer_set(TEXTS, config, DATA, None).texts == TEXTS + ["an unlabelled text", "another one"]
    asked = config.model_copy(update={"augment": True})
    assert asked.augments and build_transfer_set(TEXTS, asked, DATA, "[MASK]").counts["augmented"] > 0


@pytest.mark.parametrize("settings, n_train, samples", [
    ({}, 3_257, 4), ({}, 11_916, 1), ({}, 10_000, 1), ({}, 100, 20),  # at most Tang's 20
    ({"max_augmented": 30}, 10, 3), ({"max_augmented": None}, 11_916, 20), ({"samples_per_text": 6}, 11_916, 6)])
def test_samples_per_text_is_sized_to_max_augmented_unless_given(settings, n_train, samples):
    assert TransferConfig(**settings).samples_for(n_train) == samples


# --- corpora ---------------------------------------------------------------------------------------------------------

def test_text_csv_jsonl_and_hf_corpora(tmp_path):
    (tmp_path / "c.txt").write_bytes("first line\r\n\n   \nsecond \u2028 line\nthird\n".encode())
    assert read_corpus(CorpusConfig(path=str(tmp_path / "c.txt")), DATA) == ["first line", "second \u2028 line",
                                                                              "third"]
    (tmp_path / "c.csv").write_text('id,body\n1,"a, quoted"\n2,\n3,plain\n', encoding="utf-8")
    assert read_corpus(CorpusConfig(path=str(tmp_path / "c.csv"), format="csv", column="body"), DATA) == [
        "a, quoted", "plain"]
    (tmp_path / "c.jsonl").write_text('{"t": "x y"}\n{"t": "z"}\n', encoding="utf-8")
    assert read_corpus(CorpusConfig(path=str(tmp_path / "c.jsonl"), format="jsonl", column="t"), DATA) == ["x y", "z"]
    import datasets

    datasets.Dataset.from_dict({"text": ["hf one", "hf two"], "n": [1, 2]}).save_to_disk(str(tmp_path / "hf"))
    assert read_corpus(CorpusConfig(path=str(tmp_path / "hf"), format="hf"), DATA) == ["hf one", "hf two"]


def test_a_relative_corpus_path_is_looked_up_in_the_data_folders(tmp_path):
    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "u.txt").write_text("unlabelled\n", encoding="utf-8")
    data = DataConfig(path="unused", data_dir=str(tmp_path))
    assert read_corpus(CorpusConfig(path="corpora/u.txt"), data) == ["unlabelled"]
    with pytest.raises(BertdistillError, match=r"transfer.corpora\[3\]: corpus 'corpora/missing.txt' not found"):
        read_corpus(CorpusConfig(path="corpora/missing.txt"), data, "transfer.corpora[3]")


@pytest.mark.parametrize("content, fmt, match", [
    (b"", "text", "no texts"), (b"\n  \n\n", "text", "no texts"),
    (b"ok\n\xff\xfe bad\n", "text", "line 2: not valid UTF-8"),
    (b"PK\x03\x04\x00\x00binary", "text", "NUL byte"), (b"", "csv", "file is empty"),
    (b"a,b\n1,2\n", "csv", "no column 'text'"), (b"text\n\x00\x01\n", "csv", "NUL byte"),
    (b"text\n\n", "csv", "no texts|no rows")])
def test_bad_corpus_files_are_one_clear_error_naming_the_file(tmp_path, content, fmt, match):
    path = tmp_path / f"corpus.{fmt}"
    path.write_bytes(content)
    with pytest.raises(BertdistillError, match=match) as error:
        read_corpus(CorpusConfig(path=str(path), format=fmt), DATA)
    assert "corpus." in str(error.value)


# --- the transfer set ------------------------------------------------------------------------------------------------

def test_transfer_set_is_train_then_augmented_then_unlabelled_without_duplicates(tmp_path):
    (tmp_path / "u.txt").write_text(f"{TEXTS[0]}\nunlabelled one\nunlabelled one\nunlabelled two\n", encoding="utf-8")
    config = TransferConfig(augment=True, p_pos=0, p_mask=0.3, p_ng=0, samples_per_text=3,
                            corpora=[CorpusConfig(path=str(tmp_path / "u.txt"))])
    result = build_transfer_set(TEXTS, config, DATA, "[MASK]", tmp_path / "cache")
    assert result.texts[:len(TEXTS)] == TEXTS and result.n_train == len(TEXTS) and result.has_extra
    extra = result.texts[len(TEXTS):]
    assert extra[-2:] == ["unlabelled one", "unlabelled two"] and len(extra) == len(set(extra))
    assert all("[MASK]" in text for text in extra[:-2])
    assert result.counts["unlabelled"] == 4 and result.counts["duplicates_dropped"] == 2
    saved = json.loads(next((tmp_path / "cache").glob("transfer-*.json")).read_text())
    assert saved["texts"] == result.texts and saved["n_train"] == len(TEXTS)


def test_no_val_or_test_text_enters_the_transfer_set(tmp_path):
    (tmp_path / "u.txt").write_text("a test tweet\nunlabelled one\na val tweet\n", encoding="utf-8")
    config = TransferConfig(corpora=[CorpusConfig(path=str(tmp_path / "u.txt"))])
    result = build_transfer_set(TEXTS, config, DATA, None, held_out=["a val tweet", "a test tweet"])
    assert result.texts[len(TEXTS):] == ["unlabelled one"]
    assert result.counts["held_out_dropped"] == 2 and result.counts["duplicates_dropped"] == 0


def test_the_saved_transfer_set_is_reused_and_a_changed_setting_builds_another(tmp_path, monkeypatch):
    config = TransferConfig(augment=True, p_pos=0, samples_per_text=3)
    first = build_transfer_set(TEXTS, config, DATA, "[MASK]", tmp_path)
    monkeypatch.setattr(transfer.build, "augment", lambda *a: pytest.fail("augmented again"))
    assert build_transfer_set(TEXTS, config, DATA, "[MASK]", tmp_path).texts == first.texts
    monkeypatch.undo()
    build_transfer_set(TEXTS, config.model_copy(update={"seed": 1}), DATA, "[MASK]", tmp_path)
    build_transfer_set(TEXTS, config, DATA, "<mask>", tmp_path)
    assert len(list(tmp_path.glob("transfer-*.json"))) == 3


def test_max_texts_keeps_a_seeded_subset_in_order(tmp_path):
    config = TransferConfig(augment=True, p_pos=0, p_mask=0.5, samples_per_text=10)
    full = build_transfer_set(TEXTS, config, DATA, "[MASK]").texts[len(TEXTS):]
    capped = build_transfer_set(TEXTS, config.model_copy(update={"max_texts": 5}), DATA, "[MASK]").texts
    assert len(capped) == len(TEXTS) + 5 and capped[:len(TEXTS)] == TEXTS
    assert [full.index(text) for text in capped[len(TEXTS):]] == sorted(full.index(t) for t in capped[len(TEXTS):])


def test_masking_needs_a_mask_token():
    with pytest.raises(BertdistillError, match="mask token"):
        build_transfer_set(TEXTS, TransferConfig(augment=True, p_pos=0), DATA, None)


# --- the label and students stages -----------------------------------------------------------------------------------

def test_label_and_students_train_distilled_students_on_the_transfer_set(tiny_bert_dir, multiclass_dataset, tmp_path,
                                                                         monkeypatch):
    from test_soft_labels import make_tiny_teacher

    from bertdistill import pipeline
    from bertdistill.students import linear

    teacher = make_tiny_teacher(tiny_bert_dir, tmp_path / "tiny-teacher")
    rows = [(t, ["sports", "food", "tech"][y]) for split in ("train", "val", "test")
            for t, y in zip(multiclass_dataset.split(split).texts, multiclass_dataset.split(split).labels)]
    (tmp_path / "data.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    (tmp_path / "unlabelled.txt").write_text("", encoding="utf-8")
    config = config_from_dict({
        "data": {"format": "csv", "path": str(tmp_path / "data.csv"), "label_names": None},
        "teacher": {"reuse": str(teacher), "label_backend": "onnx-int8",
                    "label_map": {"food": "LABEL_0", "sports": "LABEL_1", "tech": "LABEL_2"}},
        "students": {"include": ["tfidf-lr", "tfidf-soft-lr"], "trials": 1, "tfidf": {"min_df": 1}},
        "transfer": {"augment": True, "p_pos": 0, "samples_per_text": 2,
                     "corpora": [{"path": str(tmp_path / "unlabelled.txt")}]}})
    run = pipeline.prepare(config, tmp_path / "run")
    test_text = run.dataset.test.texts[0]  # the corpus holds a test text: the transfer set must leave it out
    (tmp_path / "unlabelled.txt").write_text(f"a new pizza recipe\n{test_text}\nthe team lost the match\n",
                                             encoding="utf-8")
    pipeline.start(run)
    pipeline.train_teacher(run)
    logits = pipeline.label(run)
    n_train = len(run.dataset.train)
    assert len(logits["transfer"]) > n_train + 2 and len(logits["test"]) == len(run.dataset.test)
    assert test_text not in pipeline.transfer_set(run).texts
    np.testing.assert_array_equal(pipeline.teacher_logits(run, "train"), logits["transfer"][:n_train])
    seen = {}
    original_fit = linear.TfidfLinear.fit

    def spy(self, data, *args, **kwargs):
        seen[self.kind] = (len(data.texts), data.labels, len(data.teacher_logits))
        return original_fit(self, data, *args, **kwargs)

    monkeypatch.setattr(linear.TfidfLinear, "fit", spy)
    pipeline.train_students(run)
    n_transfer = len(logits["transfer"])
    assert seen["tfidf-lr"][0::2] == (n_train, n_train)  # the baseline: gold-labelled train rows only
    np.testing.assert_array_equal(seen["tfidf-lr"][1], run.dataset.train.labels)
    assert seen["tfidf-soft-lr"][0::2] == (n_transfer, n_transfer)  # distilled: train rows, then unlabelled ones
    np.testing.assert_array_equal(seen["tfidf-soft-lr"][1][:n_train], run.dataset.train.labels)
    assert np.all(seen["tfidf-soft-lr"][1][n_train:] == -1)
    seen.clear()
    pipeline.train_students(run)
    assert not seen  # same settings, teacher and texts: both reused
    changed = pipeline.Run(config.model_copy(update={"transfer": config.transfer.model_copy(
        update={"samples_per_text": 1})}), run.out)
    pipeline.label(changed)
    pipeline.train_students(changed)
    assert set(seen) == {"tfidf-soft-lr"}  # a new transfer set retrains the distilled student, not the baseline
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["teacher"]["label_backend"]  # a run directory from before label_backend existed
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    torch_labels = config.model_copy(update={"teacher": config.teacher.model_copy(update={"label_backend": "torch"})})
    pipeline.start(pipeline.prepare(torch_labels, tmp_path / "run"))  # how to label may change within a run


@pytest.mark.parametrize("section, match", [
    ('[[transfer.corpora]]\npath = "missing.txt"\n', r"transfer.corpora\[0\]: corpus 'missing.txt' not found"),
    ("[transfer]\naugment = true\np_pos = 0.3\n", "transfer.p_pos = 0.3 needs a part-of-speech tagger")])
def test_cli_rejects_a_bad_transfer_setup_before_creating_the_run_directory(tmp_path, capsys, monkeypatch,
                                                                           tiny_bert_dir, section, match):
    from bertdistill.cli import main

    monkeypatch.setattr(transfer.build, "load_tagger", lambda: None)
    (tmp_path / "data.csv").write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(30)),
                                       encoding="utf-8")
    (tmp_path / "run.toml").write_text(f'[data]\nformat = "csv"\npath = "{tmp_path / "data.csv"}"\n'
                                       f'[teacher]\nbackbone = "{tiny_bert_dir}"\n{section}', encoding="utf-8")
    assert main(["label", str(tmp_path / "run.toml"), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("bertdistill: error:")
    assert re.search(match, error) and not (tmp_path / "run").exists()
