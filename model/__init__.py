"""sgdtam-pipe: model -- SG-DTAM (staged generation + dynamic time alignment).

Modules, one job each:

- ``config``      SGDTAMConfig (presets "paper", "tiny"; ablation switches), LabelSpec
- ``batching``    collate(clips, labels) -> Batch: padded values, real times, masks, availability
- ``attention``   the scoped multi-head attention every block uses
- ``generation``  MINE route choice, Staged Generation Transformer (SGM masks, [bridge]), SCA
- ``alignment``   MHDTA with the soft time-alignment mask from real times, gates, AWM; DTAM
- ``losses``      Eq. 8 conditional-MI bound, InfoNCE + projection head, reconstruction, soft-DTW, smoothness
- ``sgdtam``      SGDTAM(config)(batch) -> (ModelOutput, loss | None); predict(model, clip)
- ``train``       train(...) with Adam, clipping, plateau scheduler, early stopping, modality dropout
- ``metrics``     regression / classification metrics; evaluate(..., patterns=PATTERNS)
- ``checkpoint``  safetensors + card.json; strict load_checkpoint, check_features
- ``datasets``    CMU-MultimodalSDK .csd files; MMSA pickles (trusted input only)
"""
