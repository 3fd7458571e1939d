"""Where the suites, probes, load scenarios and fixtures are.

From a source tree (editable install, or running in the repo) they are the repo's top-level folders;
from a wheel they are the copies under ``pbxcheck/_bundled/`` (pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """The folder ``name`` (suites, sip_probes, load, fixtures); FileNotFoundError if neither copy exists."""
    for candidate in (_PKG.parent.parent / name, _PKG / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pbxcheck's {name}/ folder is missing from this installation")
