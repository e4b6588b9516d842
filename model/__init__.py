"""sgdtam-pipe: model."""
