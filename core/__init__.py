"""sgdtam-pipe: core -- the contracts every other package depends on.

- ``media``       probe and decode once: ``open_recording(path)`` -> ``Recording`` (real PTS)
- ``timeline``    the time contract: ``TimedFeatures`` (values + real start/end seconds), ``ClipFeatures``
- ``records_io``  ``ClipFeatures`` <-> ``.npz`` files (the cache and dataset format)
- ``errors``      ``UserError``: a one-line message naming the file and the reason
- ``devices``     ``--device`` resolution (auto / cpu / cuda) for torch and CTranslate2
- ``memory``      fewer glibc malloc arenas for the concurrent stages
- ``threads``     idle OpenMP threads sleep (``OMP_WAIT_POLICY``), set before torch loads

Nothing here imports ``extractors``, ``model`` or ``pipeline``.
"""
