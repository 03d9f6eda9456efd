"""QLoRA: the base model's Linear layers quantised by bitsandbytes as transformers' ``BitsAndBytesConfig`` loads
them. bitsandbytes' ``Params4bit`` cannot hold a fake tensor, so each quantised layer is replaced by a stand-in that
holds exactly the bytes bitsandbytes stores and allocates what its matmul allocates on CUDA. Read from bitsandbytes
0.50.2, transformers 5 and PEFT 0.21 (tests/test_memory_quant.py compares with real bitsandbytes on CPU):

- Which layers: transformers' ``replace_with_bnb_linear`` converts every module that is exactly ``nn.Linear`` or a
  GPT-2 ``Conv1D``, except those ``get_keys_to_not_convert`` names (tied weights, the output embeddings, the module
  of the last parameter) and the model's ``_keep_in_fp32_modules``. Embeddings, norms, heads and 3-D expert
  parameters keep the model's dtype.
- NF4 (``functional.quantize_4bit``, blocksize 64, n weights): the packed weight, uint8 ((n+1)//2, 1); the 16-entry
  code in fp32; absmax in fp32 per block, or with double quantisation (``quantize_blockwise`` of absmax minus its
  mean, blocksize 256) absmax in uint8, the mean (a 0-d fp32), fp32 absmax per 256 blocks and a 256-entry fp32 code.
- LLM.int8 (``Int8Params``): the int8 weight (out, in) and fp32 row scales ``SCB`` (out,).
- ``MatMul4Bit``: on CUDA past 1536 tokens ``gemm_4bit`` dequantises the weight to the compute dtype and calls
  ``F.linear`` (``_dequant_linear_fallback``; with double quantisation two fp32 absmax temporaries beside it); the
  backward dequantises again (``dequantize_4bit``, the weight's dtype) for grad_input. Nothing is saved for the frozen
  weight. ``Linear4bit`` casts the input to the compute dtype and the output back to the input's.
- ``MatMul8bitLt`` (CUDA, threshold 6.0, no outlier column assumed): an fp16 copy of the input, its int8 rows and fp32
  row scales, the outlier mask, an int32 accumulator and the fp16 result (cast to the input's dtype); the backward
  dequantises the weight to the input's dtype. It saves the input (which the adapters keep anyway).
- PEFT wraps them in ``lora.bnb.Linear4bit`` / ``Linear8bitLt``, whose forward differs from ``lora.Linear``'s: the
  input is cast to the adapters' dtype only without autocast, and the 4-bit wrapper clones the base output.
"""

from __future__ import annotations

from typing import Any

QUANTS = ("none", "nf4", "int8")
_BLOCK, _BLOCK2 = 64, 256  # bitsandbytes' NF4 blocksize (transformers' default) and its double-quantisation blocksize
_THRESHOLD = 6.0  # BitsAndBytesConfig.llm_int8_threshold
_MARK = "_modscope_quantised"


def mark(model: Any) -> int:
    """Tag the layers transformers would quantise, before PEFT wraps them (their names change then); the count."""
    import torch
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = [*get_keys_to_not_convert(model), *(getattr(model, "_keep_in_fp32_modules", None) or ())]
    count = 0
    for name, module in model.named_modules():
        if (type(module) is torch.nn.Linear or isinstance(module, Conv1D)) and should_convert_module(name, skip):
            setattr(module, _MARK, True)
            count += 1
    return count


def quantise(model: Any, quant: str, dtype: Any, double_quant: bool = True) -> None:
    """Replace each layer ``mark`` tagged by its stand-in (compute dtype ``dtype``), and give PEFT's wrappers of them
    the forward of PEFT's bitsandbytes wrappers."""
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.tuners.lora.layer import ParamWrapper

    make = _layers()[quant]
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and getattr(child, _MARK, False):
                parent._modules[name] = make(child, dtype, double_quant)
    for module in model.modules():
        # a 2-D weight named in target_parameters: on a quantised layer PEFT makes a lora.bnb.Linear4bit instead
        if isinstance(module, (LoraLinear, ParamWrapper)) and isinstance(module.get_base_layer(), _layers()["base"]):
            module.__class__ = _wrapper(type(module))


def state_tensors(model: Any) -> list[Any]:
    """The tensors real bitsandbytes keeps beside its parameters (``quant_state``, ``SCB``): not parameters or
    buffers, so the step counts them here. Stand-ins hold theirs as buffers: none."""
    found = []
    for p in model.parameters():
        state = getattr(p, "quant_state", None)
        if state is not None:
            found += [state.absmax, state.code, getattr(state, "offset", None)]
            if getattr(state, "state2", None) is not None:
                found += [state.state2.absmax, state.state2.code]
        found.append(getattr(p, "SCB", None))
    return [t for t in found if t is not None]


_CLASSES: dict[str, Any] = {}


def _layers() -> dict[str, Any]:
    """The stand-in classes, made on first use (torch is imported lazily)."""
    if not _CLASSES:
        _CLASSES.update(_make_classes())
    return _CLASSES


def _make_classes() -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Quantised(nn.Module):
        """A frozen quantised Linear: its storage on meta (run_step makes it fake) and the matmul's allocations."""

        def __init__(self, layer: Any, dtype: Any) -> None:
            super().__init__()
            # Conv1D holds (in, out)
            out_in = layer.weight.shape if isinstance(layer, nn.Linear) else layer.weight.shape[::-1]
            self.out_features, self.in_features = int(out_in[0]), int(out_in[1])
            self.compute_dtype = dtype
            self.bias = layer.bias

        def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.register_buffer(name, torch.empty(shape, dtype=dtype, device="meta"), persistent=False)

        def forward(self, x: Any) -> Any:
            bias = self.bias
            if torch.is_grad_enabled() and (x.requires_grad or (bias is not None and bias.requires_grad)):
                return MatMul.apply(x, bias, self)
            return self.matmul(x, bias)

        def matmul(self, x: Any, bias: Any) -> Any:  # the forward's allocations
            raise NotImplementedError

        def grad_input(self, grad: Any) -> Any:  # the backward's, for the input's gradient
            raise NotImplementedError

    class MatMul(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, bias: Any, layer: Any) -> Any:
            ctx.layer = layer
            return layer.matmul(x, bias)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return ctx.layer.grad_input(grad) if ctx.needs_input_grad[0] else None, None, None

    class Linear4bit(Quantised):
        def __init__(self, layer: Any, dtype: Any, double_quant: bool) -> None:
            super().__init__(layer, dtype)
            n = self.out_features * self.in_features
            self.blocks, self.nested = -(-n // _BLOCK), double_quant
            self.weight = nn.Parameter(torch.empty(((n + 1) // 2, 1), dtype=torch.uint8, device="meta"), False)
            self._buffer("code", (16,), torch.float32)
            if double_quant:
                self._buffer("absmax", (self.blocks,), torch.uint8)
                self._buffer("offset", (), torch.float32)
                self._buffer("absmax2", (-(-self.blocks // _BLOCK2),), torch.float32)
                self._buffer("code2", (256,), torch.float32)
            else:
                self._buffer("absmax", (self.blocks,), torch.float32)

        def forward(self, x: Any) -> Any:
            dtype, x = x.dtype, x.to(self.compute_dtype)
            return super().forward(x).to(dtype)

        def matmul(self, x: Any, bias: Any) -> Any:
            # _dequant_linear_fallback: the absmax dequantised and offset (both live until it returns), the weight
            absmax = [torch.empty(self.blocks, dtype=torch.float32) for _ in range(2 if self.nested else 0)]
            weight = torch.empty((self.out_features, self.in_features), dtype=x.dtype)
            out = F.linear(x, weight, bias)
            del absmax, weight
            return out

        def grad_input(self, grad: Any) -> Any:
            # F.dequantize_4bit: the nested absmax (freed on return), the weight in the dtype it was quantised from
            absmax = torch.empty(self.blocks, dtype=torch.float32) if self.nested else None
            weight = torch.empty((self.out_features, self.in_features), dtype=self.compute_dtype)
            del absmax
            return torch.matmul(grad, weight.to(grad.dtype))

    class Linear8bitLt(Quantised):
        def __init__(self, layer: Any, dtype: Any, double_quant: bool) -> None:
            super().__init__(layer, dtype)
            shape = (self.out_features, self.in_features)
            self.weight = nn.Parameter(torch.empty(shape, dtype=torch.int8, device="meta"), False)
            self._buffer("SCB", (self.out_features,), torch.float32)

        def matmul(self, x: Any, bias: Any) -> Any:
            a = x.reshape(-1, x.shape[-1]) if x.dim() == 3 else x
            half = a.to(torch.float16)
            # int8_vectorwise_quant: row scales, int8 rows, then the outlier mask (|A| >= threshold)
            scales, rows = torch.empty(a.shape[0], dtype=torch.float32), torch.empty(a.shape, dtype=torch.int8)
            outliers = half.abs() >= _THRESHOLD
            del outliers, half
            # int8_scaled_mm: the int32 accumulator, dequantised to fp16, then to the input's dtype
            acc = torch.empty((a.shape[0], self.out_features), dtype=torch.int32)
            out = torch.empty(acc.shape, dtype=torch.float16)
            if bias is not None:
                out = out.add_(bias) if bias.dtype != torch.float16 else out
            out = out.to(x.dtype)
            del acc, rows, scales
            return out.reshape(*x.shape[:-1], self.out_features)

        def grad_input(self, grad: Any) -> Any:
            g = grad.reshape(-1, grad.shape[-1]).contiguous() if grad.dim() == 3 else grad
            weight = self.weight.to(grad.dtype, copy=True).mul_(self.get_buffer("SCB").unsqueeze(1).mul(1.0 / 127.0))
            return torch.matmul(g, weight).view(*grad.shape[:-1], self.in_features)

    return {"base": Quantised, "nf4": Linear4bit, "int8": Linear8bitLt}


def _wrapper(cls: type) -> type:
    """``cls`` (PEFT's lora.Linear) with the forward of PEFT's lora.bnb.Linear4bit / Linear8bitLt."""
    return type(f"QLora{cls.__name__}", (cls,), {"forward": _bnb_lora_forward})


def _bnb_lora_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """PEFT's ``lora.bnb.Linear4bit.forward`` (``Linear8bitLt``'s without the clone), the training path. PEFT asks
    whether CUDA's autocast is on (``torch.is_autocast_enabled()``); the simulation's autocast, CPU's, stands for it."""
    import torch
    from peft.tuners.lora.layer import VARIANT_KWARG_KEYS

    self._check_forward_args(x, *args, **kwargs)
    kwargs.pop("adapter_names", None)
    variant_kwargs = {k: kwargs.pop(k, None) for k in VARIANT_KWARG_KEYS}
    result = self.base_layer(x, *args, **kwargs)
    if type(self.base_layer).__name__ == "Linear4bit":
        result = result.clone()  # "As per Tim Dettmers, for 4bit, we need to defensively clone here."
    converting = not (torch.is_autocast_enabled() or torch.is_autocast_enabled("cpu"))
    for name in self.active_adapters:
        if name not in self.lora_A:
            continue
        lora_A, lora_B = self.lora_A[name], self.lora_B[name]
        if converting:
            expected = result.dtype
            x = self._cast_input_dtype(x, lora_A.weight.dtype)
        if name not in self.lora_variant:
            output = lora_B(lora_A(self.lora_dropout[name](x))) * self.scaling[name]
            result = result + (output.to(expected) if converting else output)
        else:
            result = self.lora_variant[name].forward(self, active_adapter=name, x=x, result=result, **variant_kwargs)
            result = result.to(expected) if converting else result
    return result


def adamw_8bit(params: list[Any], *, fake: bool) -> Any:
    """bitsandbytes' ``AdamW8bit`` for the real check; on fake tensors, whose values its step reads, a stand-in
    with the state it keeps (``Optimizer2State.init_state``): per tensor of at least 4096 elements two uint8
    states of its shape and two fp32 absmax vectors of one value per 256-element block, beside two 256-entry
    quantisation maps shared by all; fp32 states below that. Its update runs in place: no temporaries."""
    import torch

    if not fake:
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=1e-4)

    class AdamW8bitStandIn:
        def __init__(self) -> None:
            self.state: dict[Any, dict[str, Any]] = {}
            self.maps = (torch.empty(256), torch.empty(256))

        def step(self) -> None:
            for p in params:
                if p in self.state:
                    continue
                if p.numel() < 4096:
                    self.state[p] = {"state1": torch.empty_like(p, dtype=torch.float32)}
                    self.state[p]["state2"] = torch.empty_like(p, dtype=torch.float32)
                    continue
                blocks = -(-p.numel() // 256)
                self.state[p] = {
                    "state1": torch.empty_like(p, dtype=torch.uint8),
                    "state2": torch.empty_like(p, dtype=torch.uint8),
                    "qmap1": self.maps[0],
                    "qmap2": self.maps[1],
                    "absmax1": torch.empty(blocks),
                    "absmax2": torch.empty(blocks),
                }

        def zero_grad(self, set_to_none: bool = True) -> None:
            for p in params:
                p.grad = None

    return AdamW8bitStandIn()
