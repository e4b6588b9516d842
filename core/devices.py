"""Where the models run: ``--device auto|cpu|cuda`` resolved against what this machine has.

Whisper runs on CTranslate2, the text encoder and SG-DTAM on torch; each is
asked separately whether it sees a CUDA GPU (a CPU-only torch wheel sees none
even on a GPU machine). ``auto`` takes the GPU where that library sees one,
else the CPU; ``cuda`` where it sees none is refused with a
:class:`~sgdtam_pipe.core.errors.UserError` before any work starts.
The device is a runtime choice (``RUNTIME_FIELDS``): results agree up to
float rounding, so it never enters a cache identity.
"""

from __future__ import annotations

from sgdtam_pipe.core.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


def check_device(choice: str) -> str:
    """``choice`` if it is one of :data:`DEVICES`, else a ``UserError``."""
    if choice not in DEVICES:
        raise UserError(f"device {choice!r}: choose one of {', '.join(DEVICES)}")
    return choice


def torch_cuda() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU, and what it found (for ``doctor``)."""
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda
        return False, f"torch {torch.__version__}: no CUDA GPU" + ("" if build else " (CPU-only build)")
    return True, f"torch {torch.__version__}: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"


def ctranslate2_cuda() -> tuple[bool, str]:
    """Whether CTranslate2 (Whisper) sees a CUDA GPU, and what it found."""
    import ctranslate2

    count = ctranslate2.get_cuda_device_count()
    return count > 0, f"ctranslate2 {ctranslate2.__version__}: {count} CUDA device(s)"


def torch_device(choice: str) -> str:
    """``"cuda"`` or ``"cpu"`` for the torch models (text encoder, SG-DTAM)."""
    return _resolve(check_device(choice), torch_cuda, "torch (text encoder, SG-DTAM)")


def whisper_device(choice: str) -> str:
    """``"cuda"`` or ``"cpu"`` for Whisper (CTranslate2)."""
    return _resolve(check_device(choice), ctranslate2_cuda, "CTranslate2 (Whisper)")


def _resolve(choice: str, probe, library: str) -> str:
    if choice == "cpu":
        return "cpu"
    visible, found = probe()
    if visible:
        return "cuda"
    if choice == "cuda":
        raise UserError(f"--device cuda: {library} sees no CUDA GPU ({found}); use --device cpu or auto")
    return "cpu"
