"""What one training epoch draws, and in which batches.

**Plain epochs** draw every training example once, in a random order.

**Balanced epochs** (``groups`` given, e.g. the source corpus of each
example) keep the size of a plain epoch but give every group the same share
of it: with ``N`` examples in ``G`` groups, each group contributes
``draws_per_group`` draws, by default ``round(N / G)``. A group smaller than
that is drawn whole, several times over (whole shuffled passes, then a random
part of one more); a larger group contributes a fresh random subset each
epoch, without repeats. So 28,000 photos, 10,000 sentences and 1,000 voices
give epochs of 39,000 draws, 13,000 from each source: the voices are seen 13
times an epoch (modality dropout and dropout make the repeats differ), the
photos about half each epoch.

**Batches** group draws of similar length (less padding, so far less
attention work): the drawn order is cut into pools of ``pool`` batches, each
pool sorted by the clip's longest stream and cut into batches, and the
batches are shuffled. All randomness comes from the ``torch.Generator``
passed in, so an epoch is reproducible from the generator's state.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from sgdtam_pipe.core.timeline import ClipFeatures, TimedFeatures


def epoch_order(count: int, generator: torch.Generator, groups: Sequence[str] | None = None,
                draws_per_group: int | None = None, group_draws: Mapping[str, int] | None = None) -> list[int]:
    """Indices into the training examples for one epoch (balanced across ``groups`` when given);
    ``group_draws`` sets the draws of the groups it names (a source worth more of each epoch)."""
    if groups is None:
        return torch.randperm(count, generator=generator).tolist()
    if len(groups) != count:
        raise ValueError(f"{len(groups)} groups for {count} examples")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    share = draws_per_group if draws_per_group is not None else max(1, round(count / len(members)))
    if share < 1:
        raise ValueError(f"draws_per_group must be positive, got {share}")
    drawn: list[int] = []
    for name in sorted(members):
        drawn += _draw(members[name], (group_draws or {}).get(name, share), generator)
    return [drawn[k] for k in torch.randperm(len(drawn), generator=generator).tolist()]


def _draw(members: list[int], share: int, generator: torch.Generator) -> list[int]:
    """``share`` members: whole shuffled passes, then the start of one more."""
    out: list[int] = []
    while len(out) < share:
        out += [members[k] for k in torch.randperm(len(members), generator=generator).tolist()]
    return out[:share]


def length_batches(clips: Sequence[ClipFeatures], order: Sequence[int], batch_size: int,
                   generator: torch.Generator, pool: int = 50) -> list[list[int]]:
    """``order`` cut into batches of clips of similar length, in random batch order."""
    batches = []
    for begin in range(0, len(order), batch_size * pool):
        chunk = sorted(order[begin:begin + batch_size * pool], key=lambda i: _longest(clips[i]))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[k] for k in shuffled]


def _longest(clip: ClipFeatures) -> int:
    return max((len(r) for r in (clip.text, clip.audio, clip.video) if isinstance(r, TimedFeatures)), default=0)
