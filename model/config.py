"""SG-DTAM hyper-parameters, named presets, ablation switches, and the label spec.

``paper`` follows Table 3 of the paper (d = 32, 8 heads, lambda_contrast =
lambda_recon = 0.1, lambda_order = 0.05, theta = 0.12, Adam at 1e-3). Weights
the paper leaves unnamed (lambda_cmi, lambda_align, mu_smooth, lambda_awm) are
our choices and say so below. ``tiny`` is for tests and benchmarks.

Every ablation row of Tables 16 and 17 has a switch:

=============================  =======================
Table row                      switch set to False
=============================  =======================
w/o Dynamic Sequence Decision  ``use_mi_order``
w/o SCA                        ``use_sca``
w/o SGM                        ``use_sgm``
w/o [bridge] token             ``use_bridge``
w/o Contrastive Loss           ``use_contrastive``
w/o Reconstruction Loss        ``use_recon``
w/o MHDTA                      ``use_mhdta``
w/o Dynamic Time Align. Mask   ``use_dta_mask``
w/o Adaptive Weighting         ``use_awm``
w/o Temporal Alignment Loss    ``use_align_loss``
w/o Temporal Smoothness Loss   ``use_smooth_loss``
=============================  =======================

plus ``use_cmi`` (the Eq. 8 objective), ``use_gates`` (the per-head g_i) and
``time_source`` ("real" | "index" | "none") for the alignment benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from sgdtam_pipe.core.timeline import MODALITIES

TIME_SOURCES = ("real", "index", "none")
OFFSET_KINDS = ("gap", "centre")


@dataclass(frozen=True)
class LabelSpec:
    """What the model predicts: a score in [-3, 3] or one of ``classes``."""

    kind: str = "regression"
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"label kind must be 'regression' or 'classification', got {self.kind!r}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if self.kind == "classification" and len(self.classes) < 2:
            raise ValueError(f"classification needs at least two classes, got {self.classes!r}")
        if self.kind == "regression" and self.classes:
            raise ValueError("regression labels take no classes")

    @property
    def outputs(self) -> int:
        return 1 if self.kind == "regression" else len(self.classes)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LabelSpec":
        return cls(str(data["kind"]), tuple(data.get("classes", ())))


@dataclass(frozen=True)
class SGDTAMConfig:
    """Everything that shapes the network; stored in every checkpoint."""

    text_dim: int = 768
    audio_dim: int = 74
    video_dim: int = 47
    label: LabelSpec = field(default_factory=LabelSpec)
    d_model: int = 32
    heads: int = 8
    sgt_layers: int = 2
    dtam_layers: int = 1
    dropout: float = 0.1
    pool_std: tuple[str, ...] = ()   # modalities whose head pools the std over rows besides the mean (model/sgdtam.py)
    pattern_head: bool = False       # the head also reads which of the 7 availability patterns was observed
    proj_dim: int = 64               # InfoNCE projection head width (paper: "e.g. 128")
    mine_bank: int = 32              # marginal samples kept per modality for per-sample MI
    cmi_components: int = 2          # Gaussian mixture size for H(Y|Z) in Eq. 8
    # loss weights: Table 3 ...
    lambda_contrast: float = 0.1
    lambda_recon: float = 0.1
    lambda_order: float = 0.05       # weight of the MINE (Donsker-Varadhan) objective
    theta: float = 0.12              # route threshold on Delta I ("lambda_threshold")
    # ... and ours (the paper names no value)
    lambda_cmi: float = 0.05
    lambda_align: float = 0.1
    mu_smooth: float = 0.1
    lambda_awm: float = 0.5          # lambda of Eq. 28, per second of offset
    contrast_tau: float = 0.1
    sdtw_gamma: float = 0.1
    sdtw_max_len: int = 64           # longer sequences are mean-pooled before soft-DTW
    delta_init: tuple[float, float] = (0.1, 1.0)   # seconds; heads spread over this range
    dta_tau: float = 0.1             # seconds; temperature of the soft DTA mask
    offset_kind: str = "gap"
    time_source: str = "real"
    # ablation switches (Tables 16, 17)
    use_mi_order: bool = True
    use_sca: bool = True
    use_sgm: bool = True
    use_bridge: bool = True
    use_cmi: bool = True
    use_contrastive: bool = True
    use_recon: bool = True
    use_mhdta: bool = True
    use_dta_mask: bool = True
    use_awm: bool = True
    use_gates: bool = True
    use_align_loss: bool = True
    use_smooth_loss: bool = True

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        if self.time_source not in TIME_SOURCES:
            raise ValueError(f"time_source must be one of {TIME_SOURCES}, got {self.time_source!r}")
        if self.offset_kind not in OFFSET_KINDS:
            raise ValueError(f"offset_kind must be one of {OFFSET_KINDS}, got {self.offset_kind!r}")
        for name in MODALITIES:
            if self.width(name) < 1:
                raise ValueError(f"{name}_dim must be positive, got {self.width(name)}")
        object.__setattr__(self, "delta_init", tuple(float(x) for x in self.delta_init))
        object.__setattr__(self, "pool_std", tuple(str(m) for m in self.pool_std))
        unknown = [m for m in self.pool_std if m not in MODALITIES]
        if unknown:
            raise ValueError(f"pool_std names unknown modalities {unknown} (modalities are {MODALITIES})")

    def width(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_dim"))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "SGDTAMConfig":
        """``paper`` (Table 3) or ``tiny`` (tests), with any field overridden."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
        return replace(cls(**base), **overrides)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["label"] = self.label.to_json()
        data["delta_init"] = list(self.delta_init)
        data["pool_std"] = list(self.pool_std)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SGDTAMConfig":
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        data["label"] = LabelSpec.from_json(data["label"])
        return cls(**data)


PATIENCE = 8
"""Epochs without a better validation score before training stops."""
PLATEAU_PATIENCE = 3
"""Epochs without a better validation score before the learning rate drops 10x."""
DEFAULT_PRESET = "paper"

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {"text_dim": 8, "audio_dim": 6, "video_dim": 5, "d_model": 16, "heads": 4,
             "sgt_layers": 1, "proj_dim": 16, "mine_bank": 8, "dropout": 0.0, "sdtw_max_len": 16},
}
