"""The dual-encoder losses (base, TCM, ALC) against their formulas, written
out pair by pair with Python loops, and the hardest-negative search against a
brute-force search."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmc.nn import (
    DualEncoderLoss,
    PairClassifier,
    hardest_negatives,
    in_batch_softmax_loss,
    pair_features,
    query_label_loss,
    tcm_loss,
    triplet_loss,
)


def _batch(seed, n_queries=4, n_labels=6):
    """Similarities in [-1, 1], a positive per query and extra gold labels;
    query 0 has every label gold (no negative at all)."""
    rng = np.random.default_rng(seed)
    sim = rng.uniform(-1, 1, size=(n_queries, n_labels))
    gold = rng.uniform(size=(n_queries, n_labels)) < 0.3
    positive = rng.integers(n_labels, size=n_queries)
    gold[np.arange(n_queries), positive] = True
    gold[0] = True
    return sim, positive, gold


def _tensors(sim, positive, gold):
    return (
        torch.tensor(sim, dtype=torch.float32),
        torch.tensor(positive, dtype=torch.int64),
        torch.tensor(gold),
    )


def _softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


# ---------------------------------------------------------------- literals
def _literal_triplet(sim, positive, gold, margin):
    total, count = 0.0, 0
    for i in range(len(sim)):
        for j in range(len(sim[i])):
            if gold[i][j]:
                continue
            total += max(0.0, margin - sim[i][positive[i]] + sim[i][j])
            count += 1
    return total / count if count else 0.0


def _literal_softmax(logits, positive, gold):
    total = 0.0
    for i in range(len(logits)):
        p = positive[i]
        denominator = math.exp(logits[i][p])
        for j in range(len(logits[i])):
            if not gold[i][j]:
                denominator += math.exp(logits[i][j])
        total += -math.log(math.exp(logits[i][p]) / denominator)
    return total / len(logits)


def _literal_tcm(sim, gold, m_pos, m_neg, w_pos, w_neg):
    pos, neg = [], []
    for i in range(len(sim)):
        for j in range(len(sim[i])):
            s = sim[i][j]
            if gold[i][j] and s <= m_pos:
                pos.append(m_pos - s)
            if not gold[i][j] and s >= m_neg:
                neg.append(s - m_neg)
    mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
    return w_pos * mean(pos) + w_neg * mean(neg)


def _literal_hardest(sim, gold):
    out = []
    for i in range(len(sim)):
        best, best_j = -math.inf, -1
        for j in range(len(sim[i])):
            if not gold[i][j] and sim[i][j] > best:
                best, best_j = sim[i][j], j
        out.append(best_j)
    return out


def _literal_query_label(logits, positive, negative):
    total = 0.0
    for i in range(len(logits)):
        sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        total += -math.log(sigmoid(logits[i][positive[i]]))
        if negative[i] >= 0:
            total += -math.log(1 - sigmoid(logits[i][negative[i]]))
    return total / len(logits)


# ------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("margin", [0.0, 0.3, 1.5])
def test_triplet_loss_is_its_formula(seed, margin):
    sim, positive, gold = _batch(seed)
    got = triplet_loss(*_tensors(sim, positive, gold), margin=margin)
    assert float(got) == pytest.approx(
        _literal_triplet(sim, positive, gold, margin), rel=1e-5, abs=1e-7
    )


@pytest.mark.parametrize("seed", range(3))
def test_in_batch_softmax_loss_is_its_formula(seed):
    logits, positive, gold = _batch(seed)
    logits = logits * 5
    got = in_batch_softmax_loss(*_tensors(logits, positive, gold))
    assert float(got) == pytest.approx(
        _literal_softmax(logits, positive, gold), rel=1e-5
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "margins, weights", [((0.9, 0.5), (1.0, 1.0)), ((0.2, -0.3), (0.5, 2.0))]
)
def test_tcm_loss_is_its_formula(seed, margins, weights):
    sim, _, gold = _batch(seed)
    s, _, g = _tensors(sim, np.zeros(len(sim), dtype=int), gold)
    got = tcm_loss(
        s, g, pos_margin=margins[0], neg_margin=margins[1],
        pos_weight=weights[0], neg_weight=weights[1],
    )  # fmt: skip
    expected = _literal_tcm(sim, gold, *margins, *weights)
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_tcm_loss_is_zero_without_violations_and_counts_only_violators():
    sim = torch.tensor([[0.95, 0.1], [0.2, 0.99]])
    gold = torch.tensor([[True, False], [False, True]])
    assert float(tcm_loss(sim, gold)) == 0.0
    # one violating positive among two: its own margin gap, not halved
    sim2 = torch.tensor([[0.95, 0.1], [0.2, 0.7]])
    assert float(tcm_loss(sim2, gold)) == pytest.approx(0.2)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_queries=st.integers(1, 6),
    n_labels=st.integers(1, 8),
)
def test_hardest_negative_is_the_brute_force_one_and_never_gold(
    data, n_queries, n_labels
):
    # few distinct values: ties are frequent and must go to the lower column
    values = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0])
    sim = data.draw(
        st.lists(
            st.lists(values, min_size=n_labels, max_size=n_labels),
            min_size=n_queries,
            max_size=n_queries,
        )
    )
    gold = data.draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_labels, max_size=n_labels),
            min_size=n_queries,
            max_size=n_queries,
        )
    )
    got = hardest_negatives(torch.tensor(sim), torch.tensor(gold)).tolist()
    assert got == _literal_hardest(sim, gold)
    for i, j in enumerate(got):
        if j >= 0:
            assert not gold[i][j]
        else:
            assert all(gold[i])


def test_hardest_negative_search_sends_no_gradient():
    sim = torch.tensor([[0.3, 0.9]], requires_grad=True)
    assert not hardest_negatives(sim, torch.tensor([[True, False]])).requires_grad


@pytest.mark.parametrize("seed", range(3))
def test_query_label_loss_is_its_formula(seed):
    logits, positive, gold = _batch(seed)
    logits = logits * 4
    negative = _literal_hardest(-logits, gold)  # any negatives, -1 included
    assert negative[0] == -1
    got = query_label_loss(
        torch.tensor(logits, dtype=torch.float32),
        torch.tensor(positive),
        torch.tensor(negative),
    )
    assert float(got) == pytest.approx(
        _literal_query_label(logits, positive, negative), rel=1e-5
    )


def test_pair_features_are_the_four_blocks():
    rng = np.random.default_rng(0)
    hq, hl = rng.normal(size=(2, 3)), rng.normal(size=(4, 3))
    got = pair_features(torch.tensor(hq), torch.tensor(hl)).numpy()
    for i in range(2):
        for j in range(4):
            expected = np.concatenate(
                [hq[i], hl[j], np.abs(hq[i] - hl[j]), hq[i] * hl[j]]
            )
            np.testing.assert_allclose(got[i, j], expected)


@pytest.mark.parametrize("loss", ["contrastive", "tcm", "alc", "alc+tcm"])
@pytest.mark.parametrize("base", ["triplet", "softmax"])
def test_dual_encoder_loss_is_the_weighted_sum_of_its_literal_terms(loss, base):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    hq = rng.normal(size=(4, 5))
    hl = rng.normal(size=(6, 5))
    _, positive, gold = _batch(2)
    weights = {"tcm_weight": 0.7, "beta_ql": 0.3, "beta_qb": 1.9}
    objective = DualEncoderLoss(
        5, loss=loss, base=base, margin=0.2, temperature=0.1,
        pair_hidden_size=7, generator=torch.Generator().manual_seed(0), **weights,
    )  # fmt: skip
    got = objective(
        torch.tensor(hq, dtype=torch.float32),
        torch.tensor(hl, dtype=torch.float32),
        torch.tensor(positive),
        torch.tensor(gold),
    )
    q = hq / np.linalg.norm(hq, axis=1, keepdims=True)
    lab = hl / np.linalg.norm(hl, axis=1, keepdims=True)
    sim = q @ lab.T
    if base == "triplet":
        expected = _literal_triplet(sim, positive, gold, 0.2)
    else:
        expected = _literal_softmax(sim / 0.1, positive, gold)
    if "tcm" in loss:
        expected += 0.7 * _literal_tcm(sim, gold, 0.9, 0.5, 1.0, 1.0)
    if "alc" in loss:
        with torch.no_grad():
            logits = (
                objective.pair_classifier(
                    torch.tensor(q, dtype=torch.float32),
                    torch.tensor(lab, dtype=torch.float32),
                )
                .double()
                .numpy()
            )
        negative = _literal_hardest(sim, gold)  # on the cosine, not the logits
        expected += 0.3 * _literal_query_label(logits, positive, negative)
        expected += 1.9 * _literal_softmax(logits, positive, gold)
        assert isinstance(objective.pair_classifier, PairClassifier)
    else:
        assert objective.pair_classifier is None
    assert float(got.detach()) == pytest.approx(expected, rel=1e-4)
    expected_parts = {"base"}
    expected_parts |= {"tcm"} if "tcm" in loss else set()
    expected_parts |= {"ql", "qb"} if "alc" in loss else set()
    assert set(objective.last_parts) == expected_parts


def test_alc_terms_train_the_pair_classifier_and_the_encoders():
    hq = torch.randn(3, 4, requires_grad=True)
    hl = torch.randn(5, 4, requires_grad=True)
    gold = torch.zeros(3, 5, dtype=torch.bool)
    gold[[0, 1, 2], [0, 1, 2]] = True
    objective = DualEncoderLoss(4, loss="alc", beta_ql=1.0, beta_qb=1.0)
    objective(hq, hl, torch.tensor([0, 1, 2]), gold).backward()
    assert hq.grad.abs().sum() > 0 and hl.grad.abs().sum() > 0
    assert all(p.grad is not None for p in objective.pair_classifier.parameters())


def test_dual_encoder_loss_refuses_unknown_options():
    with pytest.raises(ValueError, match="loss must be one of"):
        DualEncoderLoss(3, loss="alc+xyz")
    with pytest.raises(ValueError, match="base must be"):
        DualEncoderLoss(3, base="hinge")


@pytest.mark.parametrize("hidden_size", [None, 5])
def test_candidate_logits_are_each_querys_own_pairs(hidden_size):
    generator = torch.Generator().manual_seed(0)
    head = PairClassifier(4, hidden_size, generator=generator)
    h_q = torch.randn(3, 4, generator=generator)
    h_c = torch.randn(3, 6, 4, generator=generator)
    got = head.candidate_logits(h_q, h_c)
    for i in range(3):
        expected = head(h_q[i : i + 1], h_c[i])[0]
        torch.testing.assert_close(got[i], expected)
