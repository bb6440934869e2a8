"""The built wheel ships every module of `reactor` and `server`, as `treadle.reactor` and `treadle.server`,
and the files they read (the stats dashboard).

CI installs in editable mode, which imports straight from the checkout and so cannot notice
a subpackage the packaging config leaves out; `pip install .` (the quick start) would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "*.egg-info", "build", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source, check=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("treadle-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "treadle/" + path.relative_to(ROOT).as_posix()
        for package in ("reactor", "server")
        for suffix in ("*.py", "*.html")  # the stats dashboard is a page of its own
        for path in (ROOT / package).rglob(suffix)
        if "__pycache__" not in path.parts
    } | {"treadle/" + path.name for path in (ROOT / "treadle").glob("*.py")}
    assert expected, "no modules found"
    assert sorted(expected - shipped) == []
    # Nothing of ours at the top level, where it would shadow a user's server.py or reactor.py.
    assert {name.split("/")[0] for name in shipped if not name.startswith("treadle-")} == {"treadle"}
