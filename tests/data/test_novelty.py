"""max_copy's index: the suffix array sorts, and the longest shared run matches brute force."""

import numpy as np

from generate.data.novelty import CopyIndex, build_suffix_array


def brute_longest_copy(corpus: np.ndarray, sample: list[int]) -> int:
    text = "".join(chr(65 + int(i)) for i in corpus)
    query = "".join(chr(65 + int(i)) for i in sample)
    best = 0
    for start in range(len(query)):
        while start + best < len(query) and query[start : start + best + 1] in text:
            best += 1
    return best


def test_suffix_array_is_sorted():
    ids = np.random.default_rng(0).integers(0, 4, 2000).astype(np.uint16)
    order = build_suffix_array(ids)
    raw = ids.astype(">u2").tobytes()
    assert sorted(range(len(ids)), key=lambda i: raw[2 * i :]) == list(order)


def test_longest_copy_matches_brute_force(tmp_path, monkeypatch):
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(1)
    corpus = rng.integers(0, 5, 3000).astype(np.uint16)
    index = CopyIndex.for_corpus(corpus, "a" * 64)
    assert (tmp_path / "novelty").is_dir()  # cached for the next run
    for trial in range(40):
        sample = list(rng.integers(0, 5, 30))
        if trial % 4 == 0:
            sample = list(corpus[500 : 500 + 25]) + sample  # a long verbatim copy
        assert index.longest_copy(sample) == brute_longest_copy(corpus, sample)
    again = CopyIndex.for_corpus(corpus, "a" * 64)  # loaded from the cache
    assert again.longest_copy(list(corpus[10:60])) == 50


def test_long_samples_match_brute_force_past_the_window_and_at_the_corpus_end():
    """Every start searched at once on a window of ids; copies longer than it, and neighbours that run past the
    corpus's end, are followed up exactly."""
    from generate.data.novelty import WINDOW

    rng = np.random.default_rng(7)
    corpus = rng.integers(0, 3, 3000).astype(np.uint16)
    index = CopyIndex(corpus, build_suffix_array(corpus))
    for trial in range(12):
        sample = list(rng.integers(0, 3, 120))
        if trial % 3 == 0:  # a copy longer than the window
            start = int(rng.integers(0, 2800))
            sample[20:20] = list(corpus[start : start + WINDOW + 15 + trial])
        elif trial % 3 == 1:  # the corpus's last ids, then ids that follow nothing there
            sample[40:40] = list(corpus[-(WINDOW // 2 + trial) :]) + [0, 0, 0]
        assert index.longest_copy(sample) == brute_longest_copy(corpus, sample), trial
