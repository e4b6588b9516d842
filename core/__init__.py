"""sgdtam-pipe: core -- the contracts every other package depends on.

- ``media``       probe and decode once: ``open_recording(path)`` -> ``Recording`` (real PTS)
- ``timeline``    the time contract: ``TimedFeatures`` (values + real start/end seconds), ``ClipFeatures``
- ``records_io``  ``ClipFeatures`` <-> ``.npz`` files (the cache and dataset format)
- ``errors``      ``UserError``: a one-line message naming the file and the reason
- ``devices``     ``--device`` resolution (auto / cpu / cuda) for torch and CTranslate2

Nothing here imports ``extractors``, ``model`` or ``pipeline``.
"""
