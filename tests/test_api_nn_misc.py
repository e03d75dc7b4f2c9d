"""Issue 16, nn odds and ends: distances and the bilinear form (functional and modules),
ParameterList / ParameterDict, the public RNNBase / RNNCellBase, DataParallel.  Ops go
through the three-way table (tests/op_table.py); modules through tests/nn_oracle.py."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check, normal

TF = F


def _pdist_rows(n: int, m: int):
    # rows far apart: the distance is smooth at the inputs (no coinciding rows)
    return lambda rng, dtype: [(rng.standard_normal((n, m)) + 3 * np.arange(n)[:, None]).astype(dtype)]


CASES = [
    OpCase("cosine_similarity", lambda a, b: TF.cosine_similarity(a, b),
           lambda a, b: torch.nn.functional.cosine_similarity(a, b), normal((4, 5), (4, 5)),
           terms=5, gradgrad=True),
    OpCase("cosine_similarity-broadcast-dim", lambda a, b: TF.cosine_similarity(a, b, dim=-1),
           lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=-1),
           normal((3, 1, 6), (4, 6)), terms=6),
    OpCase("pairwise_distance", lambda a, b: TF.pairwise_distance(a, b),
           lambda a, b: torch.nn.functional.pairwise_distance(a, b), normal((4, 5), (4, 5)),
           terms=5, gradgrad=True),
    OpCase("pairwise_distance-p1-keepdim", lambda a, b: TF.pairwise_distance(a, b, 1.0, keepdim=True),
           lambda a, b: torch.nn.functional.pairwise_distance(a, b, 1.0, keepdim=True),
           normal((4, 5), (5,)), terms=5),
    OpCase("pairwise_distance-p3", lambda a, b: TF.pairwise_distance(a, b, 3.0),
           lambda a, b: torch.nn.functional.pairwise_distance(a, b, 3.0), normal((2, 3, 5), (2, 3, 5)),
           terms=5),
    OpCase("pairwise_distance-pinf", lambda a, b: TF.pairwise_distance(a, b, float("inf")),
           lambda a, b: torch.nn.functional.pairwise_distance(a, b, float("inf")),
           normal((4, 5), (4, 5))),
    OpCase("pdist", lambda x: TF.pdist(x), lambda x: torch.nn.functional.pdist(x),
           _pdist_rows(5, 4), terms=4, gradgrad=True),
    OpCase("pdist-p1", lambda x: TF.pdist(x, 1.0), lambda x: torch.nn.functional.pdist(x, 1.0),
           _pdist_rows(4, 3), terms=3),
    OpCase("pdist-p3", lambda x: TF.pdist(x, 3.0), lambda x: torch.nn.functional.pdist(x, 3.0),
           _pdist_rows(4, 3), terms=3),
    OpCase("bilinear", lambda a, b, w, c: TF.bilinear(a, b, w, c),
           lambda a, b, w, c: torch.nn.functional.bilinear(a, b, w, c),
           normal((3, 4), (3, 5), (2, 4, 5), (2,)), terms=20, gradgrad=True),
    OpCase("bilinear-nobias-batched", lambda a, b, w: TF.bilinear(a, b, w),
           lambda a, b, w: torch.nn.functional.bilinear(a, b, w),
           normal((2, 3, 4), (2, 3, 2), (3, 4, 2)), terms=8),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def test_distance_errors_name_the_problem():
    with pytest.raises(ValueError, match="pdist: input must be 2-D"):
        TF.pdist(tinyfw.ones(3))
    with pytest.raises(ValueError, match="bilinear: input1"):
        TF.bilinear(tinyfw.ones(2, 3), tinyfw.ones(2, 4), tinyfw.ones(1, 3, 5))
    with pytest.raises(ValueError, match="bilinear: weight must be 3-D"):
        TF.bilinear(tinyfw.ones(2, 3), tinyfw.ones(2, 4), tinyfw.ones(3, 4))


@requires_torch
def test_pdist_of_fewer_than_two_rows_is_empty_like_torch():
    for n in (0, 1):
        a = np.ones((n, 3), np.float32)
        got = TF.pdist(tinyfw.tensor(a))
        want = torch.nn.functional.pdist(torch.from_numpy(a))
        assert tuple(got.shape) == tuple(want.shape) == (0,)


@requires_torch
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_module_matches_torch(bias):
    tm = torch.nn.Bilinear(4, 3, 5, bias=bias).double()
    fm = tinyfw.nn.Bilinear(4, 3, 5, bias=bias, dtype=tinyfw.float64)
    rng = np.random.default_rng(0)
    compare(tm, fm, [rng.standard_normal((6, 4)), rng.standard_normal((6, 3))], dtype="float64")
    assert [n for n, _ in fm.named_parameters()] == [n for n, _ in tm.named_parameters()]


@requires_torch
def test_bilinear_init_range_matches_torch():
    fm = tinyfw.nn.Bilinear(16, 3, 200)
    w = npy(fm.weight)
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24  # U(-1/4, 1/4), 9600 draws


@requires_torch
def test_distance_modules_match_torch():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    compare(torch.nn.CosineSimilarity(dim=1), tinyfw.nn.CosineSimilarity(dim=1), [a, b],
            dtype="float64", copy=False)
    compare(torch.nn.PairwiseDistance(p=1.5, keepdim=True),
            tinyfw.nn.PairwiseDistance(p=1.5, keepdim=True), [a, b], dtype="float64", copy=False)


# -- ParameterList / ParameterDict --------------------------------------------------------------
@requires_torch
def test_parameter_list_registers_like_torch():
    vals = [np.ones((2, 3), np.float32), np.zeros(4, np.float32)]
    tl = torch.nn.ParameterList([torch.from_numpy(v) for v in vals])
    fl = tinyfw.nn.ParameterList([tinyfw.tensor(v) for v in vals])
    fl.append(tinyfw.nn.Parameter(tinyfw.ones(1)))
    tl.append(torch.nn.Parameter(torch.ones(1)))
    assert list(fl.state_dict()) == list(tl.state_dict()) == ["0", "1", "2"]
    assert len(fl) == 3 and all(isinstance(p, tinyfw.nn.Parameter) for p in fl)
    assert all(p.requires_grad for p in fl.parameters())
    assert [tuple(p.shape) for p in fl[1:]] == [(4,), (1,)]
    assert fl[-1] is list(fl.parameters())[-1]
    fl[0] = tinyfw.zeros(5)
    assert tuple(fl[0].shape) == (5,) and isinstance(fl[0], tinyfw.nn.Parameter)
    with pytest.raises(IndexError, match="out of range for 3"):
        fl[3]


def test_parameter_list_inside_a_module_trains():
    class M(tinyfw.nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = tinyfw.nn.ParameterList([tinyfw.ones(3) for _ in range(2)])

        def forward(self, x):
            for w in self.ws:
                x = x * w
            return x.sum()

    m = M()
    opt = tinyfw.optim.SGD(m.parameters(), lr=0.5)
    assert [n for n, _ in m.named_parameters()] == ["ws.0", "ws.1"]
    m(tinyfw.ones(3)).backward()
    opt.step()
    assert np.allclose(npy(m.ws[0]), 0.5)  # each grad is the other weight, 1


@requires_torch
def test_parameter_dict_behaves_like_torch():
    td = torch.nn.ParameterDict({"b": torch.nn.Parameter(torch.ones(2)), "a": torch.zeros(3)})
    fd = tinyfw.nn.ParameterDict({"b": tinyfw.nn.Parameter(tinyfw.ones(2)), "a": tinyfw.zeros(3)})
    assert list(fd) == list(td) == ["a", "b"]  # a plain dict goes in sorted
    assert list(tinyfw.nn.ParameterDict([("b", tinyfw.ones(1)), ("a", tinyfw.ones(1))])) == ["b", "a"]
    assert list(fd.state_dict()) == list(td.state_dict())
    assert isinstance(fd["a"], tinyfw.nn.Parameter) and fd["a"].requires_grad
    fd["c"] = 7  # a plain value is kept, not registered (as in PyTorch)
    td["c"] = 7
    assert fd["c"] == 7 and list(fd.state_dict()) == list(td.state_dict())
    assert fd.pop("c") == 7 and "c" not in fd
    k, v = fd.popitem()
    assert k == "b" and tuple(v.shape) == (2,) and list(fd) == ["a"]
    merged = fd | tinyfw.nn.ParameterDict({"z": tinyfw.ones(1)})
    assert list(merged) == ["a", "z"] and merged["a"] is fd["a"]
    assert fd.get("nope", 3) == 3 and fd.setdefault("n", tinyfw.ones(1)) is fd["n"]
    with pytest.raises(KeyError, match="no parameter named 'q'"):
        fd["q"]
    fd.clear()
    assert len(fd) == 0 and not list(fd.parameters())


# -- RNNBase / RNNCellBase -----------------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_rnn_base_has_torchs_parameters_and_runs_its_mode(mode):
    tb = torch.nn.RNNBase(mode, 3, 4, num_layers=2, bidirectional=True)
    fb = tinyfw.nn.RNNBase(mode, 3, 4, num_layers=2, bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in fb.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in tb.named_parameters()]
    twin = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(mode)
    tm = twin(3, 4, 2, bidirectional=True) if twin else torch.nn.RNN(
        3, 4, 2, nonlinearity="tanh" if mode == "RNN_TANH" else "relu", bidirectional=True)
    tm.double()
    fb = fb.to(tinyfw.float64)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    compare(tm, fb, [x], dtype="float64")
    assert isinstance(tinyfw.nn.LSTM(2, 3), tinyfw.nn.RNNBase)


@requires_torch
def test_rnn_cell_base_parameters_match_torch():
    tc = torch.nn.RNNCellBase(3, 5, True, num_chunks=4)
    fc = tinyfw.nn.RNNCellBase(3, 5, True, num_chunks=4)
    assert [(n, tuple(p.shape)) for n, p in fc.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in tc.named_parameters()]
    assert isinstance(tinyfw.nn.GRUCell(2, 3), tinyfw.nn.RNNCellBase)
    with pytest.raises(ValueError, match="unknown mode"):
        tinyfw.nn.RNNBase("LSTMX", 3, 4)


# -- DataParallel --------------------------------------------------------------------------------
def test_data_parallel_on_the_cpu_calls_the_module():
    m = tinyfw.nn.Linear(3, 2)
    dp = tinyfw.nn.DataParallel(m)
    x = tinyfw.randn(4, 3)
    assert np.array_equal(npy(dp(x)), npy(m(x)))
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    assert dp.module is m
    with pytest.raises(NotImplementedError, match="DistributedDataParallel"):
        tinyfw.nn.DataParallel(m, device_ids=[0, 1])
    with pytest.raises(TypeError, match="expected a Module"):
        tinyfw.nn.DataParallel(lambda x: x)
