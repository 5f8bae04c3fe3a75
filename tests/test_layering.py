"""abair_core is a plain library: importing all of it must not pull in orchestration packages."""

import pkgutil
import subprocess
import sys

import abair_core

FORBIDDEN = ("prefect", "mlflow", "dask", "distributed", "s3fs")


def test_core_imports_no_orchestration_packages():
    modules = [m.name for m in pkgutil.walk_packages(abair_core.__path__, "abair_core.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"abair_core imported: {result.stdout.strip()}"
    assert len(modules) >= 1
