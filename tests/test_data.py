"""DataLoader determinism (seeded, with workers), samplers, collate, random_split, and the
dataset parsers on small generated files (valid, truncated, corrupt, missing)."""
from __future__ import annotations

import gzip
import os
import pickle
import signal
import struct

import numpy as np
import pytest

import tinyfw
from tinyfw.data import (BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler,
                         Subset, TensorDataset, default_collate, get_worker_info, random_split)
from tinyfw.data.datasets import CIFAR10, MNIST, DatasetError, FashionMNIST, load_digits, read_idx

from helpers import DEVICE, from_np, npy


def _ds(n=50):
    x = from_np(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = from_np(np.arange(n, dtype=np.int64))
    return TensorDataset(x, y)


def _batches(loader):
    return [tuple(npy(t).tolist() for t in b) for b in loader]


def test_sequential_batches_and_drop_last():
    ds = _ds(10)
    b = _batches(DataLoader(ds, batch_size=4))
    assert [len(y) for _, y in b] == [4, 4, 2] and b[0][1] == [0, 1, 2, 3]
    assert len(DataLoader(ds, batch_size=4)) == 3
    b = _batches(DataLoader(ds, batch_size=4, drop_last=True))
    assert [len(y) for _, y in b] == [4, 4]
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2


def test_shuffle_is_seeded_and_a_permutation():
    ds = _ds(40)
    a = _batches(DataLoader(ds, batch_size=8, shuffle=True, generator=tinyfw.Generator(3)))
    b = _batches(DataLoader(ds, batch_size=8, shuffle=True, generator=tinyfw.Generator(3)))
    c = _batches(DataLoader(ds, batch_size=8, shuffle=True, generator=tinyfw.Generator(4)))
    assert a == b and a != c
    assert sorted(sum((y for _, y in a), [])) == list(range(40))
    tinyfw.manual_seed(9)
    d = _batches(DataLoader(ds, batch_size=8, shuffle=True))
    tinyfw.manual_seed(9)
    assert d == _batches(DataLoader(ds, batch_size=8, shuffle=True))
    # a second epoch of the same loader draws a new order
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=tinyfw.Generator(3))
    assert _batches(loader) != _batches(loader)


@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_workers_give_exactly_the_single_process_batches(num_workers):
    ds = _ds(53)
    ref = _batches(DataLoader(ds, batch_size=5, shuffle=True, generator=tinyfw.Generator(7)))
    got = _batches(DataLoader(ds, batch_size=5, shuffle=True, generator=tinyfw.Generator(7),
                              num_workers=num_workers, prefetch_factor=3))
    assert got == ref


class _WhoLoads(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = get_worker_info()
        return {"i": i, "worker": -1 if info is None else info.id,
                "r": float(tinyfw.rand(1).item())}


def test_worker_info_seeds_and_dict_collate():
    out = list(DataLoader(_WhoLoads(), batch_size=3, num_workers=2,
                          generator=tinyfw.Generator(0)))
    assert [b["i"].tolist() for b in out] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert [b["worker"].tolist()[0] for b in out] == [0, 1, 0, 1]  # round-robin
    assert out[0]["r"].dtype is tinyfw.float64
    # workers are seeded per worker from the loader's generator: reproducible
    again = list(DataLoader(_WhoLoads(), batch_size=3, num_workers=2,
                            generator=tinyfw.Generator(0)))
    assert [b["r"].tolist() for b in out] == [b["r"].tolist() for b in again]
    assert get_worker_info() is None


class _Fails(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError("sample 5 is broken")
        return i


class _Dies(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 4 and get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


def test_worker_exception_is_reraised_with_traceback():
    with pytest.raises(RuntimeError, match=r"(?s)worker 1 raised KeyError.*sample 5 is broken"):
        list(DataLoader(_Fails(), batch_size=1, num_workers=2))


def test_dead_worker_raises_instead_of_hanging():
    with pytest.raises(RuntimeError, match="DataLoader worker 0 .* killed by signal 9"):
        list(DataLoader(_Dies(), batch_size=2, num_workers=2))


def test_samplers():
    ds = _ds(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    r = list(RandomSampler(ds, generator=tinyfw.Generator(1)))
    assert sorted(r) == list(range(10)) and r != list(range(10))
    rr = list(RandomSampler(ds, replacement=True, num_samples=30, generator=tinyfw.Generator(1)))
    assert len(rr) == 30 and set(rr) <= set(range(10))
    bs = BatchSampler(SequentialSampler(ds), 3, drop_last=False)
    assert list(bs) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(bs) == 4
    custom = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 5, True))
    assert [y for _, y in _batches(custom)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BatchSampler(SequentialSampler(ds), 0, False)


def test_default_collate_rules():
    b = default_collate([(np.ones(2, np.float32), 1, 0.5, "a"), (np.zeros(2, np.float32), 2,
                                                                 1.5, "b")])
    assert b[0].shape == (2, 2) and b[1].dtype is tinyfw.int64 and b[2].dtype is tinyfw.float64
    assert b[3] == ["a", "b"]
    with pytest.raises(RuntimeError, match="equal shapes"):
        default_collate([tinyfw.zeros(2), tinyfw.zeros(3)])
    unbatched = list(DataLoader(_ds(3), batch_size=None))
    assert len(unbatched) == 3 and unbatched[1][1].item() == 1


class _SubclassedTensorDataset(TensorDataset):
    """Not exactly a TensorDataset: the loader collates its samples one by one."""


@pytest.mark.parametrize("num_workers", [0, 2])
def test_tensor_dataset_batches_equal_collated_samples_and_stay_on_device(num_workers):
    rng = np.random.default_rng(0)
    x = from_np(rng.standard_normal((23, 2, 3)).astype(np.float32))
    y = from_np(rng.integers(0, 5, 23))
    kw = dict(batch_size=4, shuffle=True, num_workers=num_workers)
    fast = list(DataLoader(TensorDataset(x, y), generator=tinyfw.Generator(1), **kw))
    slow = list(DataLoader(_SubclassedTensorDataset(x, y), generator=tinyfw.Generator(1), **kw))
    assert len(fast) == len(slow) == 6
    for a, b in zip(fast, slow):
        assert isinstance(a, list) and isinstance(b, list)  # default_collate's container
        for ta, tb in zip(a, b):
            assert ta.device == tb.device == DEVICE and ta.dtype is tb.dtype
            np.testing.assert_array_equal(npy(ta), npy(tb))


def test_collate_keeps_the_samples_device_and_pin_memory_is_accepted():
    batch = default_collate([tinyfw.ones(2, device="check"), tinyfw.zeros(2, device="check")])
    assert batch.device == tinyfw.device("check") and batch.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(RuntimeError, match="one device"):
        default_collate([tinyfw.ones(2, device="check"), tinyfw.zeros(2, device="cpu")])
    assert default_collate([1, 2]).device == tinyfw.device("cpu")  # host values: the CPU
    loader = DataLoader(_ds(6), batch_size=3, pin_memory=True)
    assert loader.pin_memory and [y for _, y in _batches(loader)] == [[0, 1, 2], [3, 4, 5]]


def test_random_split_and_subset():
    ds = _ds(10)
    a, b = random_split(ds, [7, 3], generator=tinyfw.Generator(0))
    ia, ib = [int(a[i][1]) for i in range(7)], [int(b[i][1]) for i in range(3)]
    assert sorted(ia + ib) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=tinyfw.Generator(0))
    assert a.indices == a2.indices
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=tinyfw.Generator(0))
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(ds, [3, 3])
    assert int(Subset(ds, [4, 2])[1][1]) == 2
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(tinyfw.zeros(3), tinyfw.zeros(4))


def test_load_digits():
    tr, te, al = load_digits("train"), load_digits("test"), load_digits("all", flatten=True)
    assert len(tr) + len(te) == len(al) == 1797
    x, y = tr[0]
    assert x.shape == (1, 8, 8) and x.dtype is tinyfw.float32 and y.dtype is tinyfw.int64
    assert al[0][0].shape == (64,)
    assert 0 <= npy(tr.tensors[0]).min() and npy(tr.tensors[0]).max() <= 1
    # stratified: every class in both splits, split fixed by the seed
    assert set(te.tensors[1].tolist()) == set(range(10))
    assert load_digits("test").tensors[1].tolist() == te.tensors[1].tolist()


# -- IDX files ---------------------------------------------------------------------------
def _idx(arr: np.ndarray, code=0x08) -> bytes:
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write_mnist(d, n=7, gz=False, train=True, subdir=""):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    p = "train" if train else "t10k"
    target = os.path.join(d, subdir)
    os.makedirs(target, exist_ok=True)
    for name, arr in ((f"{p}-images-idx3-ubyte", imgs), (f"{p}-labels-idx1-ubyte", labels)):
        data = _idx(arr)
        if gz:
            with gzip.open(os.path.join(target, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(target, name), "wb") as f:
                f.write(data)
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_reader(tmp_path, gz, train):
    imgs, labels = _write_mnist(str(tmp_path), gz=gz, train=train, subdir="MNIST/raw")
    ds = MNIST(str(tmp_path), train=train)
    assert len(ds) == 7
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and y == int(labels[3])
    np.testing.assert_allclose(npy(x)[0], imgs[3] / np.float32(255), rtol=1e-7)
    np.testing.assert_array_equal(ds.data.numpy(), imgs)


def test_image_data_is_int32_that_computes_and_feeds_the_samples(tmp_path):
    """PyTorch's uint8 `data` becomes int32 (tinyfw has no uint8); it used to be a tensor
    whose .dtype raised KeyError."""
    imgs, _ = _write_mnist(str(tmp_path))
    ds = MNIST(str(tmp_path))
    assert ds.data.dtype is tinyfw.int32 and ds.data.shape == (7, 28, 28)
    assert ds.data.sum().item() == int(imgs.astype(np.int64).sum())  # exact, no wrap-around
    assert abs(ds.data.float().mean().item() - imgs.mean()) < 1e-3
    ds.data[2] = 255 - ds.data[2]  # in place: the samples follow, as in PyTorch
    np.testing.assert_allclose(npy(ds[2][0])[0], (255 - imgs[2]) / np.float32(255), rtol=1e-7)
    ds.data = ds.data[:3]  # assigned: a subset
    assert len(ds) == 3 and len(list(DataLoader(ds, batch_size=2))) == 2
    _write_cifar_py(str(tmp_path / "cifar-10-batches-py"), n=2)
    c = CIFAR10(str(tmp_path), train=False)
    assert len(c) == 2 and c.data.dtype is tinyfw.int32 and c.data.shape == (2, 3, 32, 32)
    assert 0 <= c.data.min().item() and c.data.max().item() <= 255


def test_fashion_mnist_reader_and_transforms(tmp_path):
    _write_mnist(str(tmp_path))
    ds = FashionMNIST(str(tmp_path), transform=lambda t: t.reshape(-1),
                      target_transform=lambda c: c + 100)
    x, y = ds[0]
    assert x.shape == (784,) and y >= 100


def test_read_idx_other_dtypes(tmp_path):
    a = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    p = tmp_path / "x.idx"
    p.write_bytes(_idx(a, 0x0C))
    np.testing.assert_array_equal(read_idx(str(p)), a)


def test_mnist_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.* not found.*MNIST/raw"):
        MNIST(str(tmp_path))
    imgs, _ = _write_mnist(str(tmp_path))
    img = tmp_path / "train-images-idx3-ubyte"
    good = img.read_bytes()
    img.write_bytes(good[:-10])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte: IDX header says shape "
                                           r"\(7, 28, 28\).*truncated"):
        MNIST(str(tmp_path))
    img.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(DatasetError, match="bad IDX magic"):
        MNIST(str(tmp_path))
    img.write_bytes(good)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(6, np.uint8)))
    with pytest.raises(DatasetError, match="7 images but .* 6 labels"):
        MNIST(str(tmp_path))
    os.remove(img)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read .*train-images-idx3-ubyte.gz"):
        MNIST(str(tmp_path))


# -- CIFAR-10 ----------------------------------------------------------------------------
def _cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def _write_cifar_py(d, protocol=2, n=4):
    os.makedirs(d, exist_ok=True)
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = _cifar_arrays(n, i)
        out[name] = (data, labels)
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n}, f, protocol=protocol)
    return out


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_python_batches(tmp_path, protocol):
    ref = _write_cifar_py(str(tmp_path / "cifar-10-batches-py"), protocol)
    tr, te = CIFAR10(str(tmp_path)), CIFAR10(str(tmp_path), train=False)
    assert len(tr) == 20 and len(te) == 4
    x, y = tr[5]  # batch 2, record 1
    data, labels = ref["data_batch_2"]
    assert x.shape == (3, 32, 32) and y == labels[1]
    np.testing.assert_array_equal(tr.data.numpy()[5].reshape(-1), data[1])
    np.testing.assert_allclose(npy(x).reshape(-1), data[1] / np.float32(255), rtol=1e-7)


def test_cifar10_binary_batches(tmp_path):
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = _cifar_arrays(3, i)
        rec = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (d / (name + ".bin")).write_bytes(rec.tobytes())
    te = CIFAR10(str(tmp_path), train=False)
    data, labels = _cifar_arrays(3, 5)
    assert te.targets.tolist() == labels
    np.testing.assert_array_equal(te.data.numpy().reshape(3, -1), data)
    (d / "test_batch.bin").write_bytes(rec.tobytes()[:-1])
    with pytest.raises(DatasetError, match="test_batch.bin: size .* not a multiple of 3073"):
        CIFAR10(str(tmp_path), train=False)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_foreign_pickles(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    _write_cifar_py(str(d))
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="refusing to unpickle (posix|os).system"):
        CIFAR10(str(tmp_path), train=False)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DatasetError, match=r"test_batch: 'data' must be uint8 of shape \(N, 3072\)"):
        CIFAR10(str(tmp_path), train=False)
    (d / "test_batch").write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(DatasetError, match="test_batch: not a readable CIFAR-10 python batch"):
        CIFAR10(str(tmp_path), train=False)


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="data_batch_1.bin.* not found.*cifar-10-batches-py"):
        CIFAR10(str(tmp_path))
