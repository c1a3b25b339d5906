"""Loading the examples and the docs' snippets, which are scripts, not package modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SNIPPETS = ROOT / "docs" / "snippets"


def load_script(path: Path, module_name: str) -> ModuleType:
    """Import the script at *path* as a module named *module_name*."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses and pickling look
    # their module up by name.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
