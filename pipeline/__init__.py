"""sgdtam-pipe: pipeline."""
