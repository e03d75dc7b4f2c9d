"""Autograd: graph recording switches, the backward engine and gradient checks."""
from .engine import backward, grad
from .function import (Function, GradMode, enable_grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["backward", "grad", "Function", "GradMode", "enable_grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled", "gradcheck", "gradgradcheck", "GradcheckError"]
