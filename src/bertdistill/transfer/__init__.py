"""The transfer set the teacher labels for the students: train texts, their augmentations, unlabelled corpora."""
from bertdistill.transfer.augment import AugmentParams, PosVocabulary, augment, augment_words, split_word, tag_words
from bertdistill.transfer.build import (
           TransferSet,
           build_transfer_set,
           check,
           is_trivial,
           needs_mask_token,
           resolve_params,
)
from bertdistill.transfer.corpora import read_corpus, read_lines
from bertdistill.transfer.pos import load_tagger, tagger_id

__all__ = ["AugmentParams", "PosVocabulary", "TransferSet", "augment", "augment_words", "build_transfer_set", "check",
           "is_trivial", "load_tagger", "needs_mask_token", "read_corpus", "read_lines", "resolve_params",
           "split_word", "tag_words", "tagger_id"]
