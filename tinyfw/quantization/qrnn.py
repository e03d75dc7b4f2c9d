"""Dynamic int8 quantization of `nn.LSTM`: the same recurrence (tinyfw/nn/modules/rnn.py)
with each projection a `DynamicQuantizedLinear`: int8 weights per output row (stored:
the file shrinks about 4x), the input of each projection (the sequence for W_ih, the
hidden state of each step for W_hh) quantized to uint8 with its own min/max when it
arrives, float32 gates and cell state.  As ``torch.ao.nn.quantized.dynamic.LSTM``
(which takes per-tensor weight scales by default; these are per row)."""
from __future__ import annotations

from .. import nn
from ..nn.modules.rnn import RNNBase
from .qmodules import DynamicQuantizedLinear

__all__ = ["DynamicQuantizedLSTM"]


class DynamicQuantizedLSTM(nn.Module):
    """An inference-only LSTM with dynamically quantized projections: ``forward(input,
    (h_0, c_0)=None) -> (output, (h_n, c_n))`` as `nn.LSTM`.  Build it with
    ``from_float(lstm)`` or `quantize_dynamic`."""

    _mode = "LSTM"
    # the driver of the float layers, with this class's projections
    _run = RNNBase._run
    _check_hidden = RNNBase._check_hidden
    extra_repr = RNNBase.extra_repr

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "ih" + sfx, DynamicQuantizedLinear(in_size, 4 * hidden_size, bias))
                setattr(self, "hh" + sfx,
                        DynamicQuantizedLinear(hidden_size, 4 * hidden_size, bias))

    @classmethod
    def from_float(cls, lstm: nn.LSTM, weight_observer=None) -> "DynamicQuantizedLSTM":
        """The quantized form of a float `nn.LSTM` (weights per row by `weight_observer`,
        default a symmetric per-channel min/max observer)."""
        q = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bias,
                lstm.batch_first, lstm.dropout, lstm.bidirectional)
        for layer in range(lstm.num_layers):
            for d in range(2 if lstm.bidirectional else 1):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh, b_ih, b_hh = lstm._weights(layer, d)
                for kind, w, b in (("ih", w_ih, b_ih), ("hh", w_hh, b_hh)):
                    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
                    lin.weight, lin.bias = w, b
                    setattr(q, kind + sfx, DynamicQuantizedLinear.from_float(lin,
                                                                             weight_observer))
        return q.train(lstm.training)

    def _projections(self, layer: int, d: int) -> tuple:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        return getattr(self, "ih" + sfx), getattr(self, "hh" + sfx)

    def forward(self, input, hx: tuple | None = None) -> tuple:
        """(output, (h_n, c_n)), as nn.LSTM."""
        from ..autograd.function import no_grad

        with no_grad():  # int8 projections have no gradient
            out, h_n, c_n = self._run(input, hx)
        return out, (h_n, c_n)
