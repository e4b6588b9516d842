"""Acoustic: low-level-descriptor frames with their real times.

- ``frames``            ``AcousticConfig`` and ``AcousticExtractor``, the shared base
- ``opensmile_frames``  eGeMAPS / ComParE LLDs through openSMILE (non-commercial licence)
- ``librosa_frames``    COVAREP-style frames through librosa (permissive licence)
"""
