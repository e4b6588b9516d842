"""sgdtam-pipe: model -- SG-DTAM (staged generation + dynamic time alignment).

Modules, one job each:

- ``config``      SGDTAMConfig (presets "paper", "tiny"; ablation switches), LabelSpec
- ``batching``    collate(clips, labels) -> Batch: padded values, real times, masks, availability
- ``attention``   the scoped multi-head attention every block uses
- ``generation``  MINE route choice, Staged Generation Transformer (SGM masks, [bridge]), SCA
- ``dtam``        MHDTA with the soft time-alignment mask from real times, gates, AWM; DTAM
- ``losses``      Eq. 8 conditional-MI bound, InfoNCE + projection head, reconstruction, soft-DTW, smoothness
- ``sgdtam``      SGDTAM(config)(batch) -> (ModelOutput, loss | None); predict(model, clip)
- ``normalisation``  per-feature input standardisation fitted on train, stored as buffers
- ``sampling``    epochs (plain or balanced across groups) and length-sorted batches
- ``train``       train(...) with Adam, clipping, plateau scheduler, early stopping, modality dropout, resume
- ``train_state`` the resumable state after each epoch (safetensors + JSON)
- ``metrics``     regression / classification metrics; evaluate(..., patterns=PATTERNS); pattern_report
- ``calibration`` temperature scaling and the expected calibration error
- ``checkpoint``  safetensors + card.json; strict load_checkpoint, check_features, hide_untrained
- ``datasets``    CMU-MultimodalSDK .csd files; MMSA pickles (trusted input only)
"""
