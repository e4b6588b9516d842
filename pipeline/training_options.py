"""How to train: the options ``train`` and the starter script pass, kept free of torch so the CLI
reads its defaults here without importing it."""

from __future__ import annotations

from dataclasses import dataclass

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.model.config import DEFAULT_PRESET, PATIENCE, PLATEAU_PATIENCE


@dataclass(frozen=True)
class TrainingOptions:
    """How to train; the CLI's defaults are these (patience: model/config.py)."""

    preset: str = DEFAULT_PRESET
    epochs: int = 30
    seeds: tuple[int, ...] = (0,)
    folds: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = PATIENCE
    plateau_patience: int = PLATEAU_PATIENCE
    modality_dropout: float = 0.5
    balance_groups: bool = True
    draws_per_group: int | None = None
    composites: int = 0
    """Composite training examples to add (model/composites.py); they form the group ``composite``."""
    carriers: tuple[tuple[str, str], ...] = ()
    """``(group, modality)`` pairs: whose evidence each source group's label is, for the composites."""
    spare_evidence: bool = False
    """Modality dropout never hides a labelled example's evidence: its group's carrier, or every sense of a
    composite (pipeline/training.py ``evidence_spares``). Needs ``carriers``."""
    group_draws: tuple[tuple[str, int], ...] = ()
    """``(group, draws)`` pairs: a balanced epoch's draws from the named groups, instead of ``draws_per_group``."""
    selection: str = "default"
    """``default`` (weighted F1; MAE for regression) or ``group_accuracy``: the mean over the validation
    split's groups of their accuracy, so the largest source does not pick the epoch alone."""
    pool_std: tuple[str, ...] = ()
    """Modalities whose head also pools the std over rows (model/config.py)."""
    pattern_head: bool = False
    """The head also reads which modalities a sample observed (model/config.py)."""
    d_model: int | None = None
    """The network's width (model/config.py; None: the preset's)."""
    dropout: float | None = None
    """Dropout inside attention and the head (model/config.py; None: the preset's)."""
    average: float = 0.0
    """Decay per step of the moving average of the weights that is validated and kept (0: none; model/train.py)."""

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"give one or more different seeds, got {list(self.seeds)}")
        if self.folds == 1 or self.folds < 0:
            raise UserError(f"--folds must be 0 (none) or at least 2, got {self.folds}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.spare_evidence and not self.carriers:
            raise UserError("sparing each label's evidence from modality dropout needs the groups' carriers")
        if not 0 <= self.average < 1:
            raise UserError(f"--average must be 0 (none) or a decay below 1, got {self.average}")
