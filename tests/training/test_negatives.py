"""Negative sampling over tree clusters (XR-Transformer) against literal masks."""

import torch

from skxmc.training._negatives import active_clusters

# level of 6 clusters below 3 parents: 0 -> {0, 1}, 1 -> {2, 3}, 2 -> {4, 5}
PARENTS = torch.tensor([0, 0, 1, 1, 2, 2])
TARGET = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # positive parent 0
        [0.0, 0.0, 0.0, 1.0, 1.0, 0.0],  # positive parents 1 and 2
    ]
)
SCORES = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, -1.0]])  # best: 1, then 2 / 0


def test_first_level_counts_every_cluster():
    target = torch.tensor([[0.0, 1.0, 0.0]])
    assert active_clusters(target, None, 0).tolist() == [[1.0, 1.0, 1.0]]


def test_teacher_forced_negatives_are_the_siblings_of_positives():
    active = active_clusters(TARGET, PARENTS, 3)
    assert active.tolist() == [
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],
    ]


def test_matcher_aware_negatives_are_the_children_of_the_top_parents():
    active = active_clusters(
        TARGET, PARENTS, 3, parent_scores=SCORES, beam_size=1, teacher_forced=False
    )
    # row 1: top parent 1 -> {2, 3}, plus its positive 0
    # row 2: top parent 0 -> {0, 1}, plus its positives 3 and 4
    assert active.tolist() == [
        [1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 1.0, 1.0, 0.0],
    ]


def test_both_kinds_are_the_union_and_the_beam_is_capped():
    both = active_clusters(TARGET, PARENTS, 3, parent_scores=SCORES, beam_size=1)
    tfn = active_clusters(TARGET, PARENTS, 3)
    man = active_clusters(
        TARGET, PARENTS, 3, parent_scores=SCORES, beam_size=1, teacher_forced=False
    )
    assert torch.equal(both, torch.maximum(tfn, man))
    wide = active_clusters(TARGET, PARENTS, 3, parent_scores=SCORES, beam_size=10)
    assert wide.tolist() == [[1.0] * 6] * 2
    assert both.dtype == TARGET.dtype
