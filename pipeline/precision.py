"""Which reduced precision a stage computes in: bf16 where the CPU has it natively, fp16/bf16 on CUDA.

One place for the check and the ``auto`` rule, so fine-tuning, extraction and the probes agree on it.
"""

from __future__ import annotations

from typing import Literal

import torch

Precision = Literal["no", "bf16", "fp16"]


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so that bf16 autocast is fast there.

    Measured on MiniLM (benchmarks/README-finetune.md): bf16 autocast cuts CPU fine-tuning time by 31 % at the
    same test accuracy within noise; without native support it is emulated and slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def autocast_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an extraction on ``device`` (None: float32) for ``extract.mixed_precision``.

    ``auto``: float16 on CUDA (what extraction always used there), bfloat16 on a CPU with native bf16, else
    float32. ``fp16`` needs CUDA; ``bf16`` on a CPU without native support is slow but allowed."""
    from pipeline.errors import ConfigError

    if setting == "no":
        return None
    if setting == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None
    if setting == "fp16":
        if device.type != "cuda":
            raise ConfigError("extract.mixed_precision fp16 needs a CUDA GPU",
                              "Set it to bf16 (CPUs with bfloat16 support), auto or no on a CPU.")
        return torch.float16
    if setting == "bf16":
        return torch.bfloat16
    raise ConfigError(f"extract.mixed_precision {setting!r} is not one of auto, no, bf16, fp16")
