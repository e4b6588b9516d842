"""Test set-up: the helpers in tests/ import as plain modules; no model hub is ever tried;
the feature cache defaults to a throw-away folder, never the user's."""

import os
import sys
import tempfile
from pathlib import Path

os.environ["SGDTAM_CACHE_DIR"] = tempfile.mkdtemp(prefix="sgdtam-test-cache-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
