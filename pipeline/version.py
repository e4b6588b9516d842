"""The package version, single source for setup.cfg and --version."""

__version__ = "0.1.0"
