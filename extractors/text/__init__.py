"""Text: words with times (sidecar, Whisper or PocketSphinx, forced alignment), then token embeddings.

- ``transcript``        ``Word``/``Segment``/``Transcript`` records and ``TranscriptConfig``
- ``sidecars``          ``.srt``/``.vtt``/``.txt``/``.json`` transcripts beside a clip
- ``asr``               speech recognition (faster-whisper; PocketSphinx for a grammar)
- ``sphinx``            PocketSphinx: grammar decoding and word alignment
- ``forced_alignment``  given words -> heard times (recogniser matching, then PocketSphinx)
- ``transcribe``        the orchestrator: sidecar or recogniser, then alignment
- ``embedding``         ``TextExtractor``: MiniLM token embeddings, each token with its word's span
"""
