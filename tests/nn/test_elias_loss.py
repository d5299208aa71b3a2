"""ELIAS's batch loss against its formula, written out entry by entry."""

import math

import numpy as np
import pytest
import torch

from skxmc.nn._elias import EliasLoss, elias_loss


def _literal(scores, positive, valid, loss_lambda):
    """mean_i [ sum_j v b / max(sum_j v, 1) + lambda sum_j v y b / max(sum_j v y, 1) ]
    with b = -(y log s + (1 - y) log(1 - s)), each log clamped at -100."""

    def log(x):
        return max(math.log(x), -100.0) if x > 0 else -100.0

    total = 0.0
    for s_row, y_row, v_row in zip(scores, positive, valid):
        main = aux = n_valid = n_pos = 0.0
        for s, y, v in zip(s_row, y_row, v_row):
            if not v:
                continue
            b = -(y * log(s) + (1 - y) * log(1 - s))
            main += b
            n_valid += 1
            if y:
                aux += b
                n_pos += 1
        total += main / max(n_valid, 1) + loss_lambda * aux / max(n_pos, 1)
    return total / len(scores)


@pytest.mark.parametrize("loss_lambda", [0.0, 0.05, 2.0])
def test_elias_loss_is_its_formula(loss_lambda):
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, size=(5, 7))
    scores[0, 0], scores[1, 1] = 0.0, 1.0  # clamped logs
    positive = rng.uniform(size=(5, 7)) < 0.3
    positive[0, 0] = positive[1, 1] = True
    valid = rng.uniform(size=(5, 7)) < 0.8
    valid[2] = False  # a row without any valid entry adds 0
    valid[3] &= ~positive[3]  # a row without a valid positive: no aux term
    expected = _literal(scores, positive, valid, loss_lambda)
    args = (
        torch.tensor(scores, dtype=torch.float32),
        torch.from_numpy(positive),
        torch.from_numpy(valid),
    )
    got = elias_loss(*args, loss_lambda=loss_lambda)
    assert got.dtype == torch.float32 and got.ndim == 0
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert float(EliasLoss(loss_lambda)(*args)) == float(got)


def test_elias_loss_gradient_flows_to_the_scores_only():
    scores = torch.tensor([[0.3, 0.6]], requires_grad=True)
    loss = elias_loss(
        scores, torch.tensor([[True, False]]), torch.tensor([[True, True]]), 1.0
    )
    loss.backward()
    # d/ds of [(-log s0 - log(1 - s1)) / 2 + (-log s0)] at s = (0.3, 0.6)
    torch.testing.assert_close(
        scores.grad, torch.tensor([[-1.5 / 0.3, 0.5 / 0.4]]), rtol=1e-6, atol=0
    )


def test_elias_loss_runs_in_float32_inside_autocast():
    scores = torch.tensor([[0.25, 0.5]], dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = elias_loss(
            scores, torch.tensor([[True, False]]), torch.tensor([[True, True]])
        )
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx((-math.log(0.25) - math.log(0.5)) / 2)
