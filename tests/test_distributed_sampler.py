"""DistributedSampler: PyTorch's semantics (disjoint shares, padding by wrapping or
drop_last, set_epoch reshuffles), checked against torch's sampler where the order is
deterministic and against the definition where it is random."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw as tf
from tinyfw.data import DataLoader, DistributedSampler, TensorDataset

torch = pytest.importorskip("torch", reason="torch is the oracle for the unshuffled order")


class _Len:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), replicas=st.integers(1, 6), drop_last=st.booleans())
def test_unshuffled_order_matches_torch(n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for r in range(replicas):
        ours = DistributedSampler(_Len(n), replicas, r, shuffle=False, drop_last=drop_last)
        ref = TorchSampler(_Len(n), replicas, r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(ref)
        assert len(ours) == len(ref)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 50), replicas=st.integers(1, 5), drop_last=st.booleans(),
       epoch=st.integers(0, 3))
def test_shuffled_shares_cover_every_sample_once(n, replicas, drop_last, epoch):
    shares = []
    for r in range(replicas):
        s = DistributedSampler(_Len(n), replicas, r, shuffle=True, seed=7, drop_last=drop_last)
        s.set_epoch(epoch)
        shares.append(list(s))
        assert len(shares[-1]) == len(s)
    sizes = {len(x) for x in shares}
    assert len(sizes) == 1  # every rank runs the same number of steps
    flat = [i for x in shares for i in x]
    if drop_last:
        assert len(set(flat)) == len(flat) == (n // replicas) * replicas
    else:
        # every sample once, plus the fewest repeats that make the total divisible
        assert set(flat) == set(range(n))
        assert len(flat) == -(-n // replicas) * replicas
        # padding wraps round the permutation: position i is repeated pad // n times,
        # once more if i < pad % n
        pad = len(flat) - n
        want = sorted(1 + pad // n + (i < pad % n) for i in range(n))
        assert sorted(np.bincount(flat, minlength=n).tolist()) == want


def test_set_epoch_reshuffles_and_seed_fixes_the_order():
    a = DistributedSampler(_Len(100), 2, 0, seed=3)
    b = DistributedSampler(_Len(100), 2, 0, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)


def test_bad_arguments_and_no_group():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(_Len(4), 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(_Len(4), 0, 0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(_Len(4))


def test_dataloader_takes_it_as_sampler():
    ds = TensorDataset(tf.arange(10))
    seen = []
    for r in range(3):
        loader = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, 3, r, seed=1))
        seen += [int(v) for (b,) in loader for v in b.numpy()]
    assert sorted(set(seen)) == list(range(10)) and len(seen) == 12
