"""Does the step fit on a GPU, and what is the largest batch (or sequence length) that does?"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from modscope.errors import OptionError

GIB = 1 << 30
# the memory GPUs are sold with, in GiB (the CUDA context and the driver take some of it; see CONTEXT)
GPUS = {
    "t4": 16,
    "v100": 16,
    "v100-32gb": 32,
    "rtx3090": 24,
    "rtx4090": 24,
    "rtx5090": 32,
    "a10g": 24,
    "l4": 24,
    "l40s": 48,
    "a100-40gb": 40,
    "a100": 80,
    "a100-80gb": 80,
    "h100": 80,
    "h200": 141,
}
# what the CUDA context and kernels hold outside PyTorch's allocator (nvidia-smi shows it, max_memory_* do not);
# it depends on the driver, the GPU and the kernels loaded: a typical value, not a measurement of this step
CONTEXT = 512 << 20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Fit:
    gpu: str
    capacity: int
    needed: int  # the estimated peak plus the CUDA context
    largest: int | None  # the largest batch (or sequence length) that fits, None when not searched
    over: str  # "batch" or "seq"
    limit: int | None = None  # the search's upper end (the model's positions, for seq)

    @property
    def fits(self) -> bool:
        return self.needed <= self.capacity


def capacity(text: str) -> tuple[str, int]:
    """``24GiB``, ``80GB``, ``16000MiB`` or a GPU name -> (label, bytes). GB is read as GiB, as GPUs are sold."""
    name = text.strip().lower().replace(" ", "").replace("_", "-")
    if name in GPUS:
        return f"{name} ({GPUS[name]} GiB)", GPUS[name] * GIB
    found = _SIZE.match(text)
    if not found:
        raise OptionError(f"unknown GPU {text!r}: give a size such as 24GiB or 80GB, or one of {', '.join(GPUS)}")
    number, unit = float(found.group(1)), (found.group(2) or "gib").lower()
    scale = GIB if unit.startswith("g") else 1 << 20
    if number <= 0:
        raise OptionError(f"GPU memory must be positive, not {text!r}")
    return text.strip(), int(number * scale)


def largest(fits_at: Callable[[int], bool], first: int, guess: int, limit: int) -> int:
    """The largest n in [1, limit] with ``fits_at(n)`` (which is monotone), 0 when none: checks the guess and
    its neighbour first (the affine prediction is usually right), then bisects."""
    if not fits_at(1):
        return 0
    low, high = 1, limit + 1  # fits_at(low) holds; fits_at(high) is taken as false
    for n in (first, guess, guess + 1):
        if low < n < high:
            if fits_at(n):
                low = n
            else:
                high = n
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits_at(middle) else (low, middle)
    return low
