"""Live tensor storage, counted at every op: the allocator's view of a training step, on fake or real tensors.

Each storage is counted once, when an op first returns it (or when it is registered as a weight), and
uncounted when Python frees it, so views and in-place ops cost nothing, as on a device. The same tracker
runs the simulation (fake tensors) and the validation (real CPU tensors): the tests compare the two."""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("weights", "adapters", "gradients", "optimizer", "activations")
# each phase's peak grows linearly with depth; which phase holds the step's peak can change with depth
PHASES = ("forward", "backward", "optimizer step")


@dataclass(frozen=True)
class Peak:
    bytes: int
    op: str
    by_category: dict[str, int]


def _storage_bytes(nbytes: int, rounding: int) -> int:
    return -(-nbytes // rounding) * rounding if rounding > 1 else nbytes


def make_tracker(rounding: int = 1) -> Any:
    """A ``TorchDispatchMode`` that counts live storage bytes by category and keeps each phase's peak (with
    the op that reached it). ``rounding``: the allocator's block size (512 bytes for CUDA's caching allocator)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Tracker(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.storages: dict[int, tuple[Any, int, str]] = {}  # id -> (weakref, bytes, category)
            self.live = dict.fromkeys(CATEGORIES, 0)
            self.phase = PHASES[0]
            self.peaks = {phase: Peak(0, "", dict(self.live)) for phase in PHASES}

        def add(self, tensor: Any, category: str = "activations") -> None:
            storage = tensor.untyped_storage()
            key = id(storage)
            known = self.storages.get(key)
            if known is not None and known[0]() is storage:
                if known[2] != category and category != "activations":
                    self._move(key, category)
                return
            size = _storage_bytes(storage.nbytes(), rounding)
            self.storages[key] = (weakref.ref(storage, functools.partial(self._free, key)), size, category)
            self.live[category] += size

        def _move(self, key: int, category: str) -> None:
            ref, size, old = self.storages[key]
            self.live[old] -= size
            self.live[category] += size
            self.storages[key] = (ref, size, category)

        def _free(self, key: int, _ref: Any = None) -> None:
            entry = self.storages.pop(key, None)
            if entry is not None:
                self.live[entry[2]] -= entry[1]

        def total(self) -> int:
            return sum(self.live.values())

        def reset_peaks(self) -> None:
            self.peaks = {phase: Peak(self.total(), "", dict(self.live)) for phase in PHASES}

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch_tensor):
                    self.add(leaf)
            total = self.total()
            if total > self.peaks[self.phase].bytes:
                self.peaks[self.phase] = Peak(total, str(func.overloadpacket.__name__), dict(self.live))
            return out

    import torch

    torch_tensor = torch.Tensor
    return Tracker()
