"""SG-DTAM: staged generation of missing modalities, then dynamic time alignment, then the head.

``SGDTAM(config)(batch) -> (ModelOutput, loss or None)`` in nanoGPT style: the
loss comes back when the batch has labels. Samples are grouped by which
modalities they hold; each group runs its generation stages (none, one or
two), the generated rows take the real times of their anchor's rows (see
model/generation.py), and DTAM then aligns the three streams by time.

The head reads each aligned row through a ReLU layer, takes the masked
mean over rows per modality, and maps the three means through an MLP (the
paper does not specify it). The per-row non-linearity lets the pooled vector
reflect what co-occurs within a row after alignment; a mean of rows fed
straight to the MLP could not. For the modalities in ``config.pool_std``
(the starter: all three) the masked standard deviation over the rows joins their
mean: a voice's emotion is largely in how its frames vary (pitch and loudness
swings), which a mean of frames loses. Checkpoints without the field read
``pool_std = ()``: the mean only, as before.

With ``config.pattern_head`` the head also reads a one-hot of the sample's
observed modalities (one of seven patterns). Generated streams stand in for
the missing senses, but the head cannot otherwise tell a generated voice from
a heard one, so one set of weights had to serve a text-only MELD line and a
RAVDESS voice alike. Checkpoints without the field read False.

Attention memory grows with T_alpha x T_beta per head: feed utterance
segments with frame rates pooled (``core.timeline.pool_windows`` keeps
the pooled rows' true intervals), not minutes of 100 Hz frames.

Regression predictions are ``3 tanh(.)`` in [-3, 3] with an L1 main loss
(the paper selects on MAE); classification gives logits with cross-entropy.

Inputs are standardised per feature column before the projection (statistics
fitted on the training split, stored as buffers: model/normalisation.py).
``temperature`` (a buffer, 1 until calibrated on the validation split)
divides the logits in :meth:`ModelOutput.probabilities`; training and the
loss use the raw logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures
from sgdtam_pipe.model.batching import Batch, collate
from sgdtam_pipe.model.config import SGDTAMConfig
from sgdtam_pipe.model.dtam import DTAM, index_times, offsets
from sgdtam_pipe.model.generation import StagedGenerator, masked_mean
from sgdtam_pipe.model.losses import (
    ConditionalMI,
    ProjectionHead,
    alignment,
    info_nce,
    reconstruction,
    resample,
    smoothness,
)
from sgdtam_pipe.model.normalisation import InputNormalisation

PATTERN_COUNT = 2 ** len(MODALITIES) - 1
"""Non-empty sets of observed modalities (``config.pattern_head`` reads which one a sample has)."""
ANCHOR_ORDER = ("audio", "video", "text")
"""Whose grid a generated modality takes when two are observed: the first of the two in this order.

A fixed order, not a ranking by density. At the pipeline's defaults video is
the denser grid (15 rows/s, against 10 rows/s for acoustic frames pooled to
100 ms), so a text generated from audio and video gets the coarser of the two;
audio is the denser only for native 10 ms acoustic frames or for the test
clips (tests/model_clips.py: audio 20 rows/s, video 10). Text goes last at
any rate: its rows are words, which leave the silences between them without
a row. The order stays as it is because trained checkpoints (model/starter
among them) were fitted with it; another order changes their predictions.
"""


@dataclass(frozen=True)
class Route:
    """What a sample saw and what the model generated for it, in generation order."""

    observed: tuple[str, ...]
    generated: tuple[str, ...]

    def describe(self) -> str:
        """E.g. ``text -> audio -> video`` or ``audio+video -> text`` or ``text+audio+video``."""
        head = "+".join(self.observed)
        return " -> ".join([head, *self.generated])


@dataclass
class ModelOutput:
    prediction: torch.Tensor               # [B] scores in [-3, 3], or [B, C] logits
    routes: list[Route]
    delta_i: torch.Tensor                  # [B] MINE Delta I where a route was chosen, else NaN
    losses: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0               # calibration: probabilities are softmax(logits / T)

    def probabilities(self) -> torch.Tensor | None:
        """Calibrated class probabilities ``[B, C]``; None for regression."""
        return torch.softmax(self.prediction / self.temperature, -1) if self.prediction.dim() == 2 else None


@dataclass
class _Generated:
    """Rows of one modality generated for the samples ``index`` on their anchor's grid."""

    modality: str
    index: torch.Tensor
    rows: torch.Tensor        # [n, Ta, d]
    anchor: str
    stage: int
    condition: "_Generated | None" = None     # the stage-1 rows a stage-2 generation saw


@dataclass
class _Inputs:
    x: dict[str, torch.Tensor | None]      # projected streams (None: nobody holds it)
    start: dict[str, torch.Tensor]
    end: dict[str, torch.Tensor]


class SGDTAM(nn.Module):
    def __init__(self, config: SGDTAMConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.normalise = InputNormalisation({m: config.width(m) for m in MODALITIES})
        self.register_buffer("temperature", torch.ones(()))
        self.project = nn.ModuleDict({m: nn.Linear(config.width(m), d) for m in MODALITIES})
        self.generator = StagedGenerator(config)
        self.cmi = ConditionalMI(d, config.cmi_components)
        self.projection = ProjectionHead(d, config.proj_dim)
        self.dtam = DTAM(config)
        self.readout = nn.ModuleDict({m: nn.Linear(d, d) for m in MODALITIES})
        head_inputs = (len(MODALITIES) + len(config.pool_std)) * d + (PATTERN_COUNT if config.pattern_head else 0)
        self.head = nn.Sequential(nn.Linear(head_inputs, d), nn.ReLU(),
                                  nn.Dropout(config.dropout),
                                  nn.Linear(d, config.label.outputs))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- forward ---------------------------------------------------------------------

    def forward(self, batch: Batch) -> tuple[ModelOutput, torch.Tensor | None]:
        inputs = self._inputs(batch)
        present = batch.present()
        if not present.any(dim=1).all():
            raise ValueError("every sample needs at least one observed modality")
        summaries = {m: masked_mean(x, batch.streams[m].mask) for m, x in inputs.x.items() if x is not None}
        generated, routes, delta_i = self._generate(batch, inputs, summaries)
        x, keys, start, end = self._assemble(batch, inputs, generated)
        deltas = self._deltas(start, end)
        aligned = self.dtam(x, keys, deltas)
        pooled = torch.cat([self._pool(m, torch.relu(self.readout[m](aligned[m])), keys[m]) for m in MODALITIES],
                           dim=-1)
        if self.config.pattern_head:
            pooled = torch.cat([pooled, pattern_one_hot(present)], dim=-1)
        raw = self.head(pooled)
        prediction = 3.0 * torch.tanh(raw.squeeze(-1)) if self.config.label.kind == "regression" else raw
        output = ModelOutput(prediction, routes, delta_i, temperature=float(self.temperature))
        if batch.labels is None:
            return output, None
        loss, parts = self._loss(batch, inputs, summaries, generated, prediction)
        output.losses = parts
        return output, loss

    def _pool(self, modality: str, rows: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The head's view of one modality ``[B, d]``: the masked mean of its rows ``[B, T, d]``;
        ``[B, 2d]`` with their masked std when ``modality`` is in ``config.pool_std`` (0 where no row)."""
        mean = masked_mean(rows, keys)
        if modality not in self.config.pool_std:
            return mean
        var = masked_mean((rows - mean.unsqueeze(1)) ** 2, keys)
        std = torch.sqrt(var + 1e-6) * keys.any(1, keepdim=True).float()    # eps: finite gradient at var 0
        return torch.cat([mean, std], dim=-1)

    def _inputs(self, batch: Batch) -> _Inputs:
        x, start, end = {}, {}, {}
        for m in MODALITIES:
            s = batch.streams[m]
            if s.available.any() and s.values.shape[-1] != self.config.width(m):
                raise ValueError(f"{m} features have width {s.values.shape[-1]}, the model takes {self.config.width(m)}")
            x[m] = (torch.relu(self.project[m](self.normalise(m, s.values, s.mask)))   # Eq. 12 / 29
                    if s.available.any() else None)
            if self.config.time_source == "index":
                start[m], end[m] = index_times(s.pad, batch.duration)
            else:
                start[m], end[m] = s.start, s.end
        return _Inputs(x, start, end)

    def _generate(self, batch: Batch, inputs: _Inputs, summaries: dict[str, torch.Tensor]
                  ) -> tuple[list[_Generated], list[Route], torch.Tensor]:
        """Generation stages per availability pattern; the generated rows in generation order,
        each sample's route, and Delta I (NaN where no route was chosen)."""
        present = batch.present()                                              # [B, 3]
        routes: list[Route | None] = [None] * batch.size
        delta_i = torch.full((batch.size,), float("nan"), device=present.device)
        generated: list[_Generated] = []
        for pattern in torch.unique(present, dim=0):
            index = torch.nonzero((present == pattern).all(dim=1)).squeeze(1)  # [n] samples with this pattern
            observed = tuple(m for m, p in zip(MODALITIES, pattern.tolist()) if p)
            missing = tuple(m for m in MODALITIES if m not in observed)
            orders = [(index, missing)] if len(missing) < 2 else []   # (samples, their generation order)
            if missing:
                anchor = next(m for m in ANCHOR_ORDER if m in observed)
                scope = [(m, inputs.x[m][index], batch.streams[m].mask[index]) for m in observed]
                rows, pad = inputs.x[anchor][index], batch.streams[anchor].pad[index]   # [n, Ta, d], [n, Ta]
            if len(missing) == 1:
                generated.append(_Generated(missing[0], index, self.generator(missing[0], scope, rows, pad), anchor, 1))
            elif len(missing) == 2:
                previews = {m: self.generator(m, scope, rows, pad) for m in missing}   # stage 1 of both candidates
                first_is_a = self._order(observed[0], summaries[observed[0]][index], missing, previews, pad, delta_i, index)
                for flag, (first, second) in ((True, missing), (False, missing[::-1])):
                    sub = torch.nonzero(first_is_a == flag).squeeze(1)        # [n'] positions within index
                    if sub.numel() == 0:
                        continue
                    stage1 = _Generated(first, index[sub], previews[first][sub], anchor, 1)
                    scope2 = [(m, t[sub], k[sub]) for m, t, k in scope] + [(first, stage1.rows, pad[sub])]
                    stage2 = self.generator(second, scope2, rows[sub], pad[sub])
                    generated += [stage1, _Generated(second, index[sub], stage2, anchor, 2, stage1)]
                    orders.append((index[sub], (first, second)))
            for samples, order in orders:
                for i in samples.tolist():
                    routes[i] = Route(observed, order)
        return generated, routes, delta_i

    def _order(self, source: str, source_summary: torch.Tensor, missing: tuple[str, str],
               previews: dict[str, torch.Tensor], pad: torch.Tensor, delta_i: torch.Tensor,
               index: torch.Tensor) -> torch.Tensor:
        """Per sample, True where ``missing[0]`` goes first (Sec. 3.2.1); writes Delta I into ``delta_i``."""
        if not self.config.use_mi_order:
            return torch.ones(pad.shape[0], dtype=torch.bool, device=pad.device)
        with torch.no_grad():
            summary = tuple(masked_mean(previews[m], pad) for m in missing)
            first, chosen = self.generator.choose_first(source, source_summary, missing, summary)
        delta_i[index] = chosen
        return first

    def _assemble(self, batch: Batch, inputs: _Inputs, generated: list[_Generated]):
        """Per modality: observed rows where present, generated rows (anchor times) elsewhere."""
        x, keys, start, end = {}, {}, {}, {}
        d, b = self.config.d_model, batch.size
        for m in MODALITIES:
            s = batch.streams[m]
            mine = [g for g in generated if g.modality == m]
            own = s.values.shape[1] if s.present.any() else 0
            length = max([own, 1] + [g.rows.shape[1] for g in mine])
            device = s.values.device
            x[m] = torch.zeros(b, length, d, device=device)
            keys[m] = torch.zeros(b, length, dtype=torch.bool, device=device)
            start[m] = torch.zeros(b, length, device=device)
            end[m] = torch.zeros(b, length, device=device)
            if own:
                rows = torch.nonzero(s.present).squeeze(1)
                x[m][rows, :own] = inputs.x[m][rows]
                keys[m][rows, :own] = s.mask[rows]
                start[m][rows, :own] = inputs.start[m][rows]
                end[m][rows, :own] = inputs.end[m][rows]
            for g in mine:
                t = g.rows.shape[1]
                x[m][g.index, :t] = g.rows
                keys[m][g.index, :t] = batch.streams[g.anchor].pad[g.index]
                start[m][g.index, :t] = inputs.start[g.anchor][g.index]
                end[m][g.index, :t] = inputs.end[g.anchor][g.index]
        return x, keys, start, end

    def _deltas(self, start: dict[str, torch.Tensor], end: dict[str, torch.Tensor]) -> dict[tuple[str, str], torch.Tensor]:
        out = {}
        for a in MODALITIES:
            for b in MODALITIES:
                if a != b:
                    delta = offsets(start[a], end[a], start[b], end[b], self.config.offset_kind)
                    out[(a, b)] = torch.zeros_like(delta) if self.config.time_source == "none" else delta
        return out

    # --- losses ----------------------------------------------------------------------

    def _loss(self, batch: Batch, inputs: _Inputs, summaries: dict[str, torch.Tensor],
              generated: list[_Generated], prediction: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        labels = batch.labels
        main = F.l1_loss(prediction, labels) if c.label.kind == "regression" else F.cross_entropy(prediction, labels)
        terms = {"main": main}
        aux = self._generation_losses(batch, inputs, summaries, generated)
        mine = self._mine_loss(batch, summaries)
        weights = {"recon": c.lambda_recon * c.use_recon, "contrast": c.lambda_contrast * c.use_contrastive,
                   "cmi": c.lambda_cmi * c.use_cmi, "align": c.lambda_align * c.use_align_loss,
                   "smooth": c.lambda_align * c.mu_smooth * c.use_smooth_loss, "order": c.lambda_order * c.use_mi_order}
        terms.update(aux)
        terms["order"] = mine
        total = main + sum(weights[k] * v for k, v in terms.items() if k in weights and weights[k])
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def _generation_losses(self, batch: Batch, inputs: _Inputs, summaries: dict[str, torch.Tensor],
                           generated: list[_Generated]) -> dict[str, torch.Tensor]:
        c = self.config
        zero = batch.duration.new_zeros(())
        recon, align, smooth = [], [], []
        pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {m: [] for m in MODALITIES}
        for g in generated:
            pad = batch.streams[g.anchor].pad[g.index]
            smooth.append(smoothness(g.rows, pad))
            s = batch.streams[g.modality]
            has = s.available[g.index]
            if not has.any():
                continue
            idx, rows, pad = g.index[has], g.rows[has], pad[has]
            target = inputs.x[g.modality][idx].detach()
            keys = s.mask[idx]
            gaps = offsets(inputs.start[g.anchor][idx], inputs.end[g.anchor][idx],
                           inputs.start[g.modality][idx], inputs.end[g.modality][idx], c.offset_kind)
            if c.time_source == "none":
                gaps = torch.zeros_like(gaps)
            resampled, covered = resample(target, keys, gaps, c.dta_tau)
            recon.append(reconstruction(rows, resampled, pad & covered))
            align.append(alignment(rows, pad, target, keys, gamma=c.sdtw_gamma, max_len=c.sdtw_max_len))
            pairs[g.modality].append((masked_mean(rows, pad), summaries[g.modality][idx].detach()))
        cmi = self._cmi_terms(generated, summaries, batch)
        contrast = [info_nce(self.projection(torch.cat([p[0] for p in v])), self.projection(torch.cat([p[1] for p in v])),
                             c.contrast_tau) for v in pairs.values() if v]
        return {"recon": _mean(recon, zero), "contrast": _mean(contrast, zero), "align": _mean(align, zero),
                "smooth": _mean(smooth, zero), "cmi": _mean(cmi, zero)}

    def _cmi_terms(self, generated: list[_Generated], summaries: dict[str, torch.Tensor], batch: Batch
                   ) -> list[torch.Tensor]:
        """Eq. 8 for each second stage: X = observed embedding, Z = stage-1 output, Y = stage-2 output."""
        out = []
        for g2 in (g for g in generated if g.condition is not None):
            pad = batch.streams[g2.anchor].pad[g2.index]
            x = summaries[g2.anchor][g2.index]
            loss, _ = self.cmi(x, masked_mean(g2.rows, pad), masked_mean(g2.condition.rows, pad))
            out.append(loss)
        return out

    def _mine_loss(self, batch: Batch, summaries: dict[str, torch.Tensor]) -> torch.Tensor:
        """-(DV bound) per modality pair on detached true embeddings; also feeds the marginal banks."""
        total = batch.duration.new_zeros(())
        for i, a in enumerate(MODALITIES):
            for b in MODALITIES[i + 1:]:
                if a not in summaries or b not in summaries:
                    continue
                both = batch.streams[a].available & batch.streams[b].available
                if int(both.sum()) >= 2:
                    total = total - self.generator.mine_bound(a, summaries[a][both].detach(), b, summaries[b][both].detach())
        if self.training:
            for m, s in summaries.items():
                self.generator.remember(m, s[batch.streams[m].available].detach())
        return total


def pattern_one_hot(present: torch.Tensor) -> torch.Tensor:
    """``[B, 7]``: which non-empty set of modalities each sample observed (``present [B, 3]``)."""
    bits = present.long() @ (2 ** torch.arange(present.shape[1], device=present.device))
    return F.one_hot(bits - 1, PATTERN_COUNT).float()


def _mean(values: list[torch.Tensor], empty: torch.Tensor) -> torch.Tensor:
    return torch.stack(values).mean() if values else empty


@dataclass(frozen=True)
class Prediction:
    """One clip's result: a score or class probabilities, and what was observed and generated."""

    score: float | None
    probabilities: dict[str, float] | None
    label: str | None
    observed: tuple[str, ...]
    generated: tuple[str, ...]
    route: str


def predict(model: SGDTAM, clip: ClipFeatures) -> Prediction:
    """Run ``model`` on one clip in eval mode (its mode is restored afterwards)."""
    return predict_many(model, [clip])[0]


@torch.no_grad()
def predict_many(model: SGDTAM, clips: Sequence[ClipFeatures], batch_size: int = 64) -> list[Prediction]:
    """``predict`` for many clips, ``batch_size`` at a time (padding is never attended,
    so each clip's result does not depend on its batch-mates)."""
    was_training = model.training
    model.eval()
    widths = {m: model.config.width(m) for m in MODALITIES}
    predictions: list[Prediction] = []
    try:
        for begin in range(0, len(clips), batch_size):
            batch = collate(list(clips[begin:begin + batch_size]), widths=widths)
            output, _ = model(batch.to(next(model.parameters()).device))
            predictions += _predictions(model.config.label, output)
    finally:
        model.train(was_training)
    return predictions


def _predictions(spec, output: ModelOutput) -> list[Prediction]:
    if spec.kind == "regression":
        return [Prediction(float(score), None, None, r.observed, r.generated, r.describe())
                for score, r in zip(output.prediction.tolist(), output.routes)]
    results = []
    for probs, route in zip(output.probabilities().tolist(), output.routes):
        best = max(range(len(probs)), key=probs.__getitem__)
        results.append(Prediction(None, dict(zip(spec.classes, probs)), spec.classes[best], route.observed,
                                  route.generated, route.describe()))
    return results
