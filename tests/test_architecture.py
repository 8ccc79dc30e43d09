"""The layers of webapp/ are a contract: import-linter checks it ([tool.importlinter] in pyproject.toml).

No import cycle between the packages of webapp/ (imports inside functions included), and core imports no
feature package; `documents` builds on `databases`, never the reverse.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Shared plumbing that core may use: everything else in webapp/ is a feature core must not import.
CORE_MAY_IMPORT = {"core", "config", "extensions"}


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_contract_names_every_feature_package():
    """A new package of webapp/ is forbidden to core without anyone remembering to add it to the contract."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["id"] == "core")
    top_level = {p.stem for p in (REPO / "webapp").iterdir()
                 if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert {m.removeprefix("webapp.") for m in contract["forbidden_modules"]} == top_level - CORE_MAY_IMPORT
