"""The blocked top-k gives torch.topk's values and indices."""

import pytest
import torch

from augment.candidates.topk import BLOCK, block_maxima, product, top_k


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


@pytest.mark.parametrize(
    "rows, n, d, bias",
    [
        (8, 100_000, 50, False),  # the vector search: padded chunks of queries
        (37, 21_719, 32, True),  # a narrow head's projection onto the allowed ids
        (5, 21_719, 384, True),
        (3, 1_000, 16, True),  # narrower than one block of columns: one call
    ],
)
def test_product_gives_the_one_call_numbers_and_block_maxima(rows, n, d, bias):
    gen = torch.Generator().manual_seed(n + d)
    a, b = torch.randn(rows, d, generator=gen), torch.randn(n, d, generator=gen)
    c = torch.randn(n, generator=gen) if bias else None
    want = torch.addmm(c, a, b.t()) if bias else torch.mm(a, b.t())
    out = torch.full((rows + 2, n), float("nan"))[1:-1]  # a slice of a wider buffer
    maxima = torch.full((rows, n // BLOCK), float("nan"))
    assert product(a, b, out, c, maxima=maxima) is out
    assert torch.equal(out, want)  # bit for bit: the same dot products
    assert torch.equal(maxima, block_maxima(want))
    scores, idx = top_k(out, 23, maxima=maxima)
    ref = torch.topk(want, 23, dim=1)
    assert torch.equal(scores, ref.values) and torch.equal(idx, ref.indices)


def test_product_splits_columns_into_blocks_that_need_not_divide_them():
    a, b = torch.randn(4, 8), torch.randn(5_000, 8)  # 2048 + 2048 + 904; 78 blocks + 8 columns
    out, maxima = torch.empty(4, 5_000), torch.empty(4, 5_000 // BLOCK)
    product(a, b, out, maxima=maxima)
    assert torch.equal(out, torch.mm(a, b.t())) and torch.equal(maxima, block_maxima(out))
