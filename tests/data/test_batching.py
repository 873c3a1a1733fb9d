import numpy as np
import pytest

from generate.data.batching import StreamBatches, split_train_val, validation_batches
from generate.errors import CorpusError


def test_row_i_of_batch_k_plus_1_continues_row_i_of_batch_k():
    ids = np.arange(1000, dtype=np.uint16)
    batches = StreamBatches(ids, batch_size=4, seq_len=10)
    for k in range(len(batches) - 1):
        x0, y0 = batches.batch(k)
        x1, _ = batches.batch(k + 1)
        assert (x1[:, 0] == x0[:, -1] + 1).all()  # contiguous in the original stream
        assert (y0 == x0 + 1).all()  # targets are the next character
    # Streams are contiguous thirds of the corpus, not interleaved.
    first = np.concatenate([batches.batch(k)[0][1] for k in range(len(batches))])
    assert (np.diff(first) == 1).all()


def test_validation_is_the_held_out_tail():
    ids = np.arange(100)
    train, val = split_train_val(ids, 0.1)
    assert list(val) == list(range(90, 100)) and list(train) == list(range(90))


def test_too_short_for_one_batch_is_an_error():
    with pytest.raises(CorpusError, match="expected at least batch-size x seq-len \\+ 1 = 4 x 10 \\+ 1 = 41"):
        StreamBatches.checked(np.arange(40), 4, 10, "training")


def test_short_validation_tail_uses_fewer_rows():
    vb = validation_batches(np.arange(35), batch_size=8, seq_len=10)
    assert vb.batch_size == 3 and len(vb) == 1
    assert validation_batches(np.arange(5), batch_size=8, seq_len=10) is None
