"""What a GPU holds that the tracker cannot see: named terms, each with its source. Those the allocator
keeps for the whole step are added to the peak; the others are listed so the reader can judge them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modscope.simulate.step import Setup


@dataclass(frozen=True)
class DeviceTerm:
    name: str
    bytes: int
    added: bool  # part of max_memory_allocated at the peak
    source: str


# PyTorch's CublasHandlePool.cpp (parseChosenWorkspaceSize): 4096·8 KiB on compute capability 9, 10 and 12
# (Hopper, Blackwell), ":4096:2:16:8" = 4096·2 + 16·8 KiB before; one workspace per handle and stream
CUBLAS_WORKSPACE = {"hopper": 4096 * 8 * 1024, "older": 4096 * 1024 * 2 + 16 * 1024 * 8}


def device_terms(config: Any, setup: Setup, gpu: str = "hopper") -> tuple[DeviceTerm, ...]:
    heads = _text(config, "num_attention_heads")
    hidden = _text(config, "hidden_size")
    head_dim = _text(config, "head_dim") or (hidden // heads if heads and hidden else 0)
    scratch = 4 * setup.batch * setup.seq * heads * (head_dim + 1) if heads else 0
    return (
        DeviceTerm(
            "cuBLAS workspaces",
            2 * CUBLAS_WORKSPACE[gpu],
            True,
            "PyTorch CublasHandlePool.cpp: one workspace per handle, forward on the main thread and backward on "
            "autograd's device thread; 32 MiB each on Hopper/Blackwell, 8.125 MiB on older GPUs",
        ),
        DeviceTerm(
            "flash-attention backward scratch",
            scratch,
            False,
            "fp32 dq accumulator and softmax row sums of one layer's attention backward (B·S·H·(D+1)·4 bytes), "
            "inside the kernel and freed with it; at the peak only when the peak is in attention's backward",
        ),
    )


def _text(config: Any, name: str) -> int:
    owner = config.get_text_config()
    value = getattr(owner, name, None)
    return value if isinstance(value, int) else 0
