"""sgdtam-pipe: extractors."""
