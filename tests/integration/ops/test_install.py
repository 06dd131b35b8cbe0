"""scripts/install.sh in a throwaway root: install → run → install again (no change) → upgrade →
rollback → uninstall, without touching the machine's /etc (GATEHOUSE_ROOT)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "install.sh"


def _base_python() -> str:
    # The venv is made from the interpreter behind this one (a venv of a venv is not portable).
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")


def _run(root: Path, *args: str, version: str = "1.0") -> str:
    env = {
        **os.environ,
        "GATEHOUSE_ROOT": str(root),
        "GATEHOUSE_VERSION": version,
        "GATEHOUSE_PYTHON": _base_python(),
        "GATEHOUSE_EXTRA_SITE": sysconfig.get_paths()["purelib"],
    }
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _tree(root: Path) -> dict[str, float]:
    return {
        str(p.relative_to(root)): p.lstat().st_mtime
        for p in root.rglob("*")
        if "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }


def test_install_run_upgrade_rollback_uninstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    out = _run(root, "install")
    assert "skipped creating the 'gatehouse' user" in out
    assert "skipped 'systemctl enable gatehouse.service gatehouse-backup.timer'" in out
    opt = root / "opt" / "gatehouse"
    assert os.readlink(opt / "current") == "releases/1.0"
    for unit in ("gatehouse.service", "gatehouse-backup.service", "gatehouse-backup.timer"):
        assert (root / "etc" / "systemd" / "system" / unit).is_file()
    for folder in ("etc/gatehouse", "var/lib/gatehouse", "var/backups/gatehouse"):
        assert (root / folder).is_dir()

    # The installed command runs from its release, on the example site.
    gatehouse = opt / "current" / "venv" / "bin" / "gatehouse"
    site = ROOT / "config" / "examples" / "demo-estate.yaml"
    check = subprocess.run(
        [str(gatehouse), "check", str(site)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert check.returncode == 0, check.stdout + check.stderr
    where = subprocess.run(
        [str(opt / "current" / "venv" / "bin" / "python"), "-c", "import edge; print(edge.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,  # not the checkout: `python -c` puts the working folder first on sys.path
    )
    assert where.stdout.strip().startswith(str(opt / "releases" / "1.0" / "src"))

    # Twice: nothing changes.
    before = _tree(root)
    out = _run(root, "install")
    assert "already built" in out and "nothing to switch" in out
    assert _tree(root) == before

    # A database to protect, then an upgrade.
    data = root / "var" / "lib" / "gatehouse"
    with sqlite3.connect(data / "rules.db") as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    out = _run(root, "upgrade", version="2.0")
    assert "upgraded 1.0 -> 2.0" in out
    assert os.readlink(opt / "current") == "releases/2.0"
    assert os.readlink(opt / "previous") == "releases/1.0"
    copies = list((root / "var" / "backups" / "gatehouse" / "pre-upgrade").glob("1.0-*/rules.db"))
    assert len(copies) == 1
    with sqlite3.connect(copies[0]) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    conn.close()

    # The new release changes the data; rollback with --with-data returns to the old release and data.
    with sqlite3.connect(data / "rules.db") as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    conn.close()
    out = _run(root, "rollback", "--with-data", version="2.0")
    assert "rolled back 2.0 -> 1.0" in out
    assert os.readlink(opt / "current") == "releases/1.0"
    with sqlite3.connect(data / "rules.db") as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    conn.close()
    assert (opt / "releases" / "2.0" / ".complete").exists()  # kept, for another try

    out = _run(root, "uninstall")
    assert not opt.exists()
    assert not (root / "etc" / "systemd" / "system" / "gatehouse.service").exists()
    assert (data / "rules.db").exists()  # data is kept without --purge
    _run(root, "uninstall", "--purge")
    assert not data.exists() and not (root / "etc" / "gatehouse").exists()
    shutil.rmtree(root)
