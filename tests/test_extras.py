"""Every extra that an install hint names exists in pyproject.toml (hints must not lie)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_extras_named_in_messages_are_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {m for f in (ROOT / "src" / "promolift").rglob("*.py")
             for m in re.findall(r"promolift\[(\w+)\]", f.read_text())}
    assert named, "no install hint found: the pattern is out of date"
    assert named <= declared, f"hints name undeclared extras: {sorted(named - declared)}"
