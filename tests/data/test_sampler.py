"""GlobalBatchSampler: order is a pure function of (seed, epoch); ranks split each global batch."""

from __future__ import annotations

import pytest

from sslprobe.data.sampler import GlobalBatchSampler, sample_seed


def epoch_items(sampler: GlobalBatchSampler, epoch: int) -> list[tuple[int, int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@pytest.mark.parametrize(("size", "batch"), [(103, 10), (100, 10), (64, 64)])
def test_epoch_is_a_permutation_prefix(size, batch):
    sampler = GlobalBatchSampler(size, batch, seed=7)
    for epoch in range(3):
        indices = [index for index, _ in epoch_items(sampler, epoch)]
        assert len(indices) == len(sampler) == (size // batch) * batch
        assert len(set(indices)) == len(indices)  # no repeats
        assert all(0 <= i < size for i in indices)
        if size % batch == 0:
            assert sorted(indices) == list(range(size))


def test_order_depends_on_seed_and_epoch_only():
    first = GlobalBatchSampler(200, 16, seed=3)
    orders = {epoch: epoch_items(first, epoch) for epoch in (0, 1, 2)}
    assert orders[0] != orders[1] != orders[2]
    # A fresh sampler, asked for the epochs in another order, repeats them exactly.
    fresh = GlobalBatchSampler(200, 16, seed=3)
    for epoch in (2, 0, 1, 0):
        assert epoch_items(fresh, epoch) == orders[epoch]
    assert epoch_items(GlobalBatchSampler(200, 16, seed=4), 0) != orders[0]
    # Each item's augmentation seed is the documented function of (seed, epoch, index).
    assert all(seed == sample_seed(3, 1, index) for index, seed in orders[1])
    assert len({seed for _, seed in orders[1]}) == len(orders[1])


def test_unshuffled_order_is_sequential():
    sampler = GlobalBatchSampler(25, 8, shuffle=False)
    assert [index for index, _ in sampler] == list(range(24))


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_concatenate_to_the_single_process_batch(world):
    size, global_batch, seed = 150, 12, 11
    single = GlobalBatchSampler(size, global_batch, seed=seed)
    ranks = [GlobalBatchSampler(size, global_batch, seed=seed, rank=r, world_size=world) for r in range(world)]
    for epoch in (0, 1):
        expected = batches(epoch_items(single, epoch), global_batch)
        per_rank = [batches(epoch_items(s, epoch), global_batch // world) for s in ranks]
        assert all(s.local_batch == global_batch // world for s in ranks)
        assert all(len(batch) == len(expected) for batch in per_rank)
        for step, batch in enumerate(expected):
            assert sum((per_rank[r][step] for r in range(world)), []) == batch


def test_batch_larger_than_data_is_rejected():
    with pytest.raises(ValueError, match=r"batch_size=65 is larger than the 64 training images"):
        GlobalBatchSampler(64, 65)


def test_batch_not_divisible_by_world_size_is_rejected():
    with pytest.raises(ValueError, match=r"batch_size=10 .* divisible by the 3 processes"):
        GlobalBatchSampler(100, 10, rank=0, world_size=3)
