"""Safe access to the models that every dashboard session shares.

Feature maps and Grad-CAM attach hooks to a model that other sessions are using for inference at the same time.
Three rules keep that safe:
- one lock per model serialises every hooked pass (and the temporary `requires_grad` changes of Grad-CAM);
- a hook records only the thread that registered it, so another session's forward pass through the same
  module never lands in this session's lists;
- hooks are removed in `finally` blocks, before the lock is released.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator

from torch import nn

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def model_lock(model: nn.Module) -> threading.RLock:
    """The lock of this model object (created on first use, shared by every caller in the process)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = threading.RLock()
            _LOCKS[model] = lock
        return lock


def hook_count(model: nn.Module) -> int:
    """Module hooks registered anywhere in the model (0 on a clean model)."""
    return sum(len(getattr(m, attr, {}) or {}) for m in model.modules() for attr in HOOK_DICTS)


def resolve_layer(model: nn.Module, dotted: str) -> nn.Module:
    """`model.get_submodule` with a one-line error naming the layer."""
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        raise ValueError(f"layer {dotted!r} is not in {type(model).__name__}") from None


def thread_bound(fn: Callable) -> Callable:
    """Wrap a hook so that it does nothing when called from any thread but the one that created it."""
    owner = threading.get_ident()

    def hook(*args, **kwargs):
        if threading.get_ident() != owner:
            return None
        return fn(*args, **kwargs)

    return hook


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring gradients (so backward never fills `.grad` of the shared model); their flags
    are restored afterwards and any `.grad` is dropped. Hold the model's lock around it."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
            p.grad = None
        model.train(was_training)


def no_grad_leak(model: nn.Module) -> bool:
    """True when no parameter holds a gradient (what a shared inference model must look like)."""
    return all(p.grad is None for p in model.parameters())


__all__ = ["model_lock", "hook_count", "resolve_layer", "thread_bound", "frozen_parameters", "no_grad_leak",
           "HOOK_DICTS"]
