"""The wheel installs qctl/adapters, never a top-level `adapters` package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_has_no_top_level_adapters(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("qctl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.startswith("adapters/")]
    for backend in ("redis", "rabbitmq", "kafka"):
        assert f"qctl/adapters/{backend}/__init__.py" in names
    assert any(name.endswith("share/man/man1/qctl.1") for name in names)
    assert any(name.endswith("completions/qctl.bash") for name in names)


def test_importing_the_folder_by_its_own_name_fails_clearly() -> None:
    proc = subprocess.run([sys.executable, "-c", "import adapters"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "installed as 'qctl.adapters'" in proc.stderr
