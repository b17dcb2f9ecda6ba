"""The blocked top-k gives torch.topk's values and indices."""

import pytest
import torch

from augment.candidates.topk import top_k


@pytest.mark.parametrize(
    "rows, width, k, block",
    [
        (1, 1600, 23, 64),
        (37, 20032, 23, 64),
        (37, 20030, 23, 64),
        (9, 100_000, 45, 64),
        (5, 250, 4, 32),
    ],
)
def test_top_k_is_torch_topk(rows, width, k, block):
    assert width // block >= k  # the blocked path, not the fallback
    gen = torch.Generator().manual_seed(rows * width)
    x = torch.randn(rows, width, generator=gen)
    x[:, : width // 3] = float("-inf")  # masked vocabulary, as the -inf bias makes it
    x[0, -block:] = float("-inf")  # a whole block masked
    want = torch.topk(x, k, dim=1)
    got = top_k(x, k, block)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


def test_top_k_falls_back_where_there_are_fewer_blocks_than_k_or_strided_rows():
    x = torch.randn(3, 100)
    for view in (x[:, :64], x.t().contiguous().t()):
        got, want = top_k(view, 5, 32), torch.topk(view, 5, dim=1)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_top_k_finds_the_largest_values_in_one_block_and_in_the_tail():
    x = torch.zeros(1, 812)  # twelve blocks of 64 and a tail of 44
    x[0, 64:72] = torch.arange(10.0, 18.0)  # the 8 largest in one block
    x[0, 0] = 9.5  # the runner-up block's maximum
    x[0, 811] = 9.7  # the tail
    x[0, 200] = 9.0
    scores, idx = top_k(x, 11, 64)
    assert idx[0].tolist()[:11] == [71, 70, 69, 68, 67, 66, 65, 64, 811, 0, 200]
    assert scores[0].tolist()[-1] == 9.0


def test_top_k_of_a_slice_of_a_wider_buffer():
    # the vector index scores into rows of a reused buffer and ranks a slice of its rows
    buf = torch.randn(8, 1000)
    part = buf[2:5]  # rows past the first: a storage offset
    got, want = top_k(part, 10, 64), torch.topk(part, 10, dim=1)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
