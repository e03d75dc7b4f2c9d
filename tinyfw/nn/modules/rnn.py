"""Recurrent layers: `RNNCell`, `LSTMCell`, `GRUCell` and the sequence layers `RNN`,
`LSTM`, `GRU` (num_layers, bidirectional, batch_first, dropout between layers).

Parameter names, gate order (LSTM: i, f, g, o; GRU: r, z, n) and initialisation
U(-1/sqrt(hidden), 1/sqrt(hidden)) follow PyTorch, so state dicts transfer.  The sequence
layers project the whole input sequence with one matmul and loop over time only for the
hidden-to-hidden part.
"""
from __future__ import annotations

import math

from ... import creation
from ...ops import elementwise as E
from ...ops.index import stack, cat
from ...ops.linalg import linear
from ...tensor import Tensor
from .. import functional as F
from .. import init
from .linear import _empty
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# The steps take both projections computed (xp = x W_ih^T + b_ih, hp = h W_hh^T + b_hh),
# so that a layer with other projections (dynamic int8: tinyfw.quantization) reuses them.
def _rnn_step(xp: Tensor, hp: Tensor, relu: bool) -> Tensor:
    pre = xp + hp
    return E.relu(pre) if relu else E.tanh(pre)


def _lstm_step(xp: Tensor, hp: Tensor, c: Tensor):
    gates = xp + hp
    i, f, g, o = gates.chunk(4, dim=-1)
    c = E.sigmoid(f) * c + E.sigmoid(i) * E.tanh(g)
    return E.sigmoid(o) * E.tanh(c), c


def _gru_step(xp: Tensor, hp: Tensor, h: Tensor) -> Tensor:
    xr, xz, xn = xp.chunk(3, dim=-1)
    hr, hz, hn = hp.chunk(3, dim=-1)
    r = E.sigmoid(xr + hr)
    z = E.sigmoid(xz + hz)
    n = E.tanh(xn + r * hn)
    return n + z * (h - n)


class RNNCellBase(Module):
    """The parameters of one recurrent step: weight_ih (num_chunks * hidden, input),
    weight_hh (num_chunks * hidden, hidden) and, with bias, bias_ih and bias_hh; the
    subclasses (RNNCell, LSTMCell, GRUCell) add the step itself."""

    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        if input_size < 0 or hidden_size < 0 or num_chunks < 1:
            raise ValueError(f"{type(self).__name__}: sizes must be non-negative and num_chunks "
                             f"positive, got input_size={input_size}, hidden_size="
                             f"{hidden_size}, num_chunks={num_chunks}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks
        self.weight_ih = _empty(g * hidden_size, input_size, dtype=dtype, device=device)
        self.weight_hh = _empty(g * hidden_size, hidden_size, dtype=dtype, device=device)
        if bias:
            self.bias_ih = _empty(g * hidden_size, dtype=dtype, device=device)
            self.bias_hh = _empty(g * hidden_size, dtype=dtype, device=device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _prepare(self, input: Tensor, hx: Tensor | None) -> tuple:
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input (N, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(input.shape)}")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = creation.zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                                device=input.device)
        else:
            if unbatched:
                hx = hx.unsqueeze(0)
            if tuple(hx.shape) != (input.shape[0], self.hidden_size):
                raise ValueError(f"{name}: hidden state of shape {tuple(hx.shape)} should be "
                                 f"{(input.shape[0], self.hidden_size)}")
        return input, hx, unbatched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(input_size, hidden_size, bias, _GATES[self._mode], device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: the new hidden state."""
        x, h, unbatched = self._prepare(input, hx)
        out = _rnn_step(linear(x, self.weight_ih, self.bias_ih),
                        linear(h, self.weight_hh, self.bias_hh), self.nonlinearity == "relu")
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTMCell(RNNCellBase):
    """One LSTM step: gates i, f, g, o; c' = f*c + i*g; h' = o*tanh(c')."""

    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, _GATES[self._mode], device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        """One step: (h', c')."""
        h0, c0 = (None, None) if hx is None else hx
        x, h, unbatched = self._prepare(input, h0)
        _, c, _ = self._prepare(input, c0)
        h, c = _lstm_step(linear(x, self.weight_ih, self.bias_ih),
                          linear(h, self.weight_hh, self.bias_hh), c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step: r, z gates; n = tanh(x_n + r * h_n); h' = (1 - z) * n + z * h."""

    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, _GATES[self._mode], device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step: the new hidden state."""
        x, h, unbatched = self._prepare(input, hx)
        out = _gru_step(linear(x, self.weight_ih, self.bias_ih),
                        linear(h, self.weight_hh, self.bias_hh), h)
        return out.squeeze(0) if unbatched else out


class RNNBase(Module):
    """A multi-layer recurrent layer of one `mode` ('RNN_TANH', 'RNN_RELU', 'LSTM' or
    'GRU'): its parameters (weight_ih_l{k}[_reverse] ...) and the loop over layers,
    directions and time.  RNN, LSTM and GRU are this with the mode fixed; used directly,
    forward returns (output, h_n), or (output, (h_n, c_n)) for 'LSTM'."""

    _mode = "RNN_TANH"

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if mode not in _GATES:
            raise ValueError(f"{name}: unknown mode {mode!r} (one of {sorted(_GATES)})")
        if proj_size:
            raise ValueError(f"{name}: proj_size is not supported by tinyfw")
        self.__dict__["_mode"] = mode
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        g = _GATES[self._mode]
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                new = {"weight_ih": (g * hidden_size, in_size),
                       "weight_hh": (g * hidden_size, hidden_size)}
                if bias:
                    new.update(bias_ih=(g * hidden_size,), bias_hh=(g * hidden_size,))
                for name, shape in new.items():
                    setattr(self, name + sfx, _empty(*shape, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _weights(self, layer: int, d: int) -> tuple:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p["weight_ih" + sfx], p["weight_hh" + sfx], p.get("bias_ih" + sfx),
                p.get("bias_hh" + sfx))

    def _projections(self, layer: int, d: int) -> tuple:
        """(x -> x W_ih^T + b_ih, h -> h W_hh^T + b_hh) of one layer and direction."""
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
        return (lambda x: linear(x, w_ih, b_ih)), (lambda h: linear(h, w_hh, b_hh))

    def _check_hidden(self, h: Tensor, n: int, what: str) -> None:
        want = (self.num_layers * (2 if self.bidirectional else 1), n, self.hidden_size)
        if tuple(h.shape) != want:
            raise ValueError(f"{type(self).__name__}: {what} of shape {tuple(h.shape)} should "
                             f"be {want}")

    def _run(self, input: Tensor, hx):
        """Shared driver: returns (output, h_n, c_n or None) for (L, N, I) input."""
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input (L, N, {self.input_size}) (or batch_first "
                             f"(N, L, {self.input_size}), or unbatched (L, {self.input_size})), "
                             f"got {tuple(input.shape)}")
        unbatched = input.ndim == 2
        lstm = self._mode == "LSTM"
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(t.unsqueeze(1) for t in hx) if lstm else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        seq, n = input.shape[0], input.shape[1]
        dirs = 2 if self.bidirectional else 1
        shape = (self.num_layers * dirs, n, self.hidden_size)
        if hx is None:
            h0 = creation.zeros(*shape, dtype=input.dtype, device=input.device)
            c0 = h0 if lstm else None
        elif lstm:
            h0, c0 = hx
            self._check_hidden(h0, n, "h_0")
            self._check_hidden(c0, n, "c_0")
        else:
            h0, c0 = hx, None
            self._check_hidden(h0, n, "h_0")
        x = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                proj_ih, proj_hh = self._projections(layer, d)
                xp = proj_ih(x)  # (L, N, G*H): every time step at once
                idx = layer * dirs + d
                h = h0[idx]
                c = c0[idx] if lstm else None
                steps = range(seq - 1, -1, -1) if d else range(seq)
                ys = [None] * seq
                for t in steps:
                    if lstm:
                        h, c = _lstm_step(xp[t], proj_hh(h), c)
                    elif self._mode == "GRU":
                        h = _gru_step(xp[t], proj_hh(h), h)
                    else:
                        h = _rnn_step(xp[t], proj_hh(h), self._mode == "RNN_RELU")
                    ys[t] = h
                outs.append(stack(ys, 0) if seq else creation.zeros(0, n, self.hidden_size,
                                                                     dtype=x.dtype,
                                                                     device=x.device))
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            x = outs[0] if dirs == 1 else cat(outs, dim=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if lstm else None
        if unbatched:
            x = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, h_n, c_n

    def forward(self, input: Tensor, hx=None) -> tuple:
        """(output, h_n), or (output, (h_n, c_n)) in mode 'LSTM'."""
        out, h_n, c_n = self._run(input, hx)
        return (out, (h_n, c_n)) if self._mode == "LSTM" else (out, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN over a sequence: returns (output, h_n).  nonlinearity 'tanh' or 'relu'."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(self._mode, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:
        """(output (L, N, D*H), h_n (D*num_layers, N, H))."""
        out, h_n, _ = self._run(input, hx)
        return out, h_n

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(RNNBase):
    """LSTM over a sequence: returns (output, (h_n, c_n))."""

    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        if proj_size:
            raise ValueError("LSTM: proj_size is not supported by tinyfw")
        super().__init__(self._mode, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        """(output, (h_n, c_n))."""
        out, h_n, c_n = self._run(input, hx)
        return out, (h_n, c_n)


class GRU(RNNBase):
    """GRU over a sequence: returns (output, h_n)."""

    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None):
        super().__init__(self._mode, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:
        """(output, h_n)."""
        out, h_n, _ = self._run(input, hx)
        return out, h_n
