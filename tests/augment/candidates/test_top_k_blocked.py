"""The masked-LM's blocked top-k gives torch.topk's values and indices."""

import pytest
import torch

from augment.candidates.mlm import top_k_blocked


@pytest.mark.parametrize(
    "rows, width, k, block", [(1, 640, 23, 64), (37, 20032, 23, 64), (5, 256, 4, 32)]
)
def test_top_k_blocked_is_torch_topk(rows, width, k, block):
    gen = torch.Generator().manual_seed(rows * width)
    x = torch.randn(rows, width, generator=gen)
    x[:, : width // 3] = float("-inf")  # masked vocabulary, as the -inf bias makes it
    x[0, -block:] = float("-inf")  # a whole block of padding
    want = torch.topk(x, k, dim=1)
    got = top_k_blocked(x, k, block)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


def test_top_k_blocked_falls_back_where_blocks_do_not_fit():
    x = torch.randn(3, 100)  # not whole blocks; and fewer blocks than k below
    for got, want in (
        (top_k_blocked(x, 5, 64), torch.topk(x, 5, dim=1)),
        (top_k_blocked(x[:, :64], 5, 32), torch.topk(x[:, :64], 5, dim=1)),
    ):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_top_k_blocked_keeps_the_largest_values_across_blocks():
    # the k largest all in one block, and the runner-up blocks' maxima just below them
    x = torch.zeros(1, 256)
    x[0, 64:72] = torch.arange(10.0, 18.0)
    x[0, 0] = 9.5
    x[0, 200] = 9.0
    scores, idx = top_k_blocked(x, 10, 64)
    assert idx[0].tolist() == [71, 70, 69, 68, 67, 66, 65, 64, 0, 200]
    assert scores[0, -1].item() == 9.0
