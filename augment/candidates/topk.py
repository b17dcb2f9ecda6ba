"""Top-k over wide CPU rows (a vocabulary, a word-vector table) in about half torch.topk's time,
and the products that make those rows."""

from __future__ import annotations

BLOCK = 64  # columns per block of `top_k`
COLUMNS = 2048  # output columns per block of `product`: a whole number of BLOCKs
assert COLUMNS % BLOCK == 0


def top_k(x, k: int, block: int = BLOCK, maxima=None):
    """`torch.topk(x, k, dim=1)` of a 2-D tensor. On CPU, for rows of at least k blocks: the k
    largest values of a row lie in its k blocks with the largest maxima (those k maxima are k
    values at least as large as the k-th of them) or in the columns past the last whole block,
    so one top-k over the blocks' maxima and one over those k blocks and the tail replace a
    top-k over the whole row. The same values, sorted; indices may differ from torch.topk's
    only between equal values. `maxima`: the blocks' maxima of x as `block_maxima` gives them,
    when they are known already."""
    import torch

    rows, width = x.shape
    nb = width // block
    if x.device.type != "cpu" or nb < k or x.stride(1) != 1:
        return torch.topk(x, k, dim=1)
    whole = x[:, : nb * block].unflatten(1, (nb, block))
    if maxima is None:
        maxima = whole.amax(2)
    _, top = torch.topk(maxima, k, dim=1, sorted=False)
    cand = whole[torch.arange(rows, device=x.device).unsqueeze(1), top].reshape(rows, k * block)
    if width > nb * block:
        cand = torch.cat([cand, x[:, nb * block :]], dim=1)
    scores, at = torch.topk(cand, k, dim=1)
    inside = at < k * block
    col = top.gather(1, torch.where(inside, at // block, 0)) * block + at % block
    return scores, torch.where(inside, col, at - k * block + nb * block)


def block_maxima(x, block: int = BLOCK):
    """The maximum of each whole block of `block` columns of each row of 2-D `x`."""
    nb = x.shape[1] // block
    return x[:, : nb * block].unflatten(1, (nb, block)).amax(2)


def product(a, b, out, bias=None, maxima=None, columns: int = COLUMNS):
    """`out = a @ b.T`, plus `bias` when given, of 2-D float tensors (b: one row per output
    column, as a vocabulary projection's weight or a table of word vectors). On CPU, written
    `columns` output columns at a time: a block of a wide output stays in cache while it is
    written, where one call over rows of 20,000-100,000 columns runs 20-40% slower. Each output
    element is the same dot product either way: the same numbers. `maxima` (rows x n // BLOCK):
    filled with `block_maxima(out)`, each column block's while it is still in cache."""
    n = b.shape[0]
    step = columns if a.device.type == "cpu" else n
    whole = n // BLOCK * BLOCK
    for start in range(0, n, step):
        end = min(n, start + step)
        _mm(a, b[start:end], out[:, start:end], None if bias is None else bias[start:end])
        if maxima is not None and start < whole:
            stop = min(end, whole)
            maxima[:, start // BLOCK : stop // BLOCK] = block_maxima(out[:, start:stop])
    return out


def _mm(a, b, out, bias) -> None:
    import torch

    if bias is None:
        torch.mm(a, b.t(), out=out)
    else:
        torch.addmm(bias, a, b.t(), out=out)
