"""sgdtam-pipe: extractors -- one subpackage per modality, each yielding timed features.

``base`` holds the ``Extractor`` interface and the registry; ``text``, ``acoustic``
and ``face`` the modalities. All take a ``core.media.Recording`` opened once per clip.
"""
