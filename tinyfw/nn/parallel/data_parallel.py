"""`DataParallel`: PyTorch's single-process wrapper, for scripts that wrap a model in it
unconditionally.  On the CPU, or with one device, PyTorch's DataParallel calls the module
as it is, and so does tinyfw's.  Splitting a batch over several GPUs from one process is
not implemented: tinyfw's data parallelism is `DistributedDataParallel` (one process per
device, tinyfw.distributed), which PyTorch also recommends over DataParallel; asking for
more than one device raises and says so."""
from __future__ import annotations

from ..modules.module import Module


class DataParallel(Module):
    """Wraps `module` (reachable as ``.module``, so state dict keys gain ``module.`` as in
    PyTorch); forward calls it on the inputs as they are."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module, got {type(module).__name__}")
        from ... import cuda

        if device_ids is None:
            device_ids = list(range(cuda.device_count())) if cuda.is_available() else []
        device_ids = list(device_ids)
        if len(device_ids) > 1:
            raise NotImplementedError(
                f"DataParallel: splitting a batch over {len(device_ids)} devices from one "
                "process is not supported by tinyfw; use tinyfw.nn.parallel."
                "DistributedDataParallel with one process per device (tinyfw.distributed)")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device if output_device is not None else \
            (device_ids[0] if device_ids else None)
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        """module(*inputs, **kwargs)."""
        return self.module(*inputs, **kwargs)
