"""`tinyfw.quantization`: int8 post-training (static and dynamic) quantization and
quantization-aware training, shaped like ``torch.ao.quantization`` (docs/quantization.md).

    model = fuse_modules(model.eval(), [["0", "1", "2"]])
    prepared = prepare(QuantWrapper(model))
    for x in calibration_batches:
        prepared(x)
    qmodel = convert(prepared)          # int8 weights, uint8 activations
"""
from .fake_quantize import *  # noqa: F401,F403
from .fuse import *  # noqa: F401,F403
from .observer import *  # noqa: F401,F403
from .onnx_qdq import export_qdq  # noqa: F401
from .qat import *  # noqa: F401,F403
from .qmodules import *  # noqa: F401,F403
from .qrnn import *  # noqa: F401,F403
from .qtensor import QTensor  # noqa: F401
from .quantize import *  # noqa: F401,F403
