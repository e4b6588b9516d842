"""Face: MediaPipe face landmarker per frame at its real PTS.

- ``landmarker``    ``FaceExtractor``: subject choice, blendshapes, action units, head pose
- ``action_units``  blendshapes -> AU intensities, landmarks -> head pose
"""
