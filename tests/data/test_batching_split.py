"""A run's validation split: the corpus's tail for runs made before, a share of every label for labelled runs."""

import numpy as np

from generate.data.batching import split_run
from generate.data.labels import LabelSpans


def test_a_labelled_split_holds_out_the_tail_of_every_label():
    ids = np.arange(100, dtype=np.int32)
    spans = LabelSpans(np.array([0, 30, 60, 80], np.int64), np.array([1, 2, 1, 3], np.int32))  # label 1 twice
    train, val, train_spans, val_spans = split_run(ids, 0.1, spans, by_label=True)
    # Label 1 has 50 characters (0-29, 60-79): its last 5 are 75-79; label 2's last 3 are 57-59; label 3's last 2, 98-99.
    assert val.tolist() == [57, 58, 59, 75, 76, 77, 78, 79, 98, 99]
    assert len(train) == 90 and not set(train.tolist()) & set(val.tolist())
    assert val_spans.at(np.arange(len(val))).tolist() == [2, 2, 2, 1, 1, 1, 1, 1, 3, 3]
    assert train_spans.at(np.arange(len(train))).tolist() == spans.at(train).tolist()  # each keeps its label


def test_runs_made_before_keep_the_corpus_tail():
    ids = np.arange(100, dtype=np.int32)
    spans = LabelSpans(np.array([0, 50], np.int64), np.array([1, 2], np.int32))
    train, val, train_spans, val_spans = split_run(ids, 0.1, spans, by_label=False)
    assert val.tolist() == list(range(90, 100)) and train_spans is spans
    assert val_spans.at(np.arange(10)).tolist() == [2] * 10
    plain = split_run(ids, 0.1)
    assert plain[1].tolist() == list(range(90, 100)) and plain[2] is None and plain[3] is None
