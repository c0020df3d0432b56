"""The installed package carries kconfigs/ and the default spec, which stay at
the top of the repository: setup.py's layout, built into a temporary directory
(what a non-editable `pip install .` copies, without pip's download of its build
requirements), then used from another directory with only that copy on the path."""

import os
import shutil
import subprocess
import sys

from conftest import REPO

PROBE = """
import pvmatrix, sys
from pvmatrix import configure, paths
from pvmatrix.matrix import spec
site = sys.argv[1]
assert pvmatrix.__file__.startswith(site), pvmatrix.__file__
assert str(configure.fragment_path("xen-dom0")).startswith(site + "/pvmatrix/kconfigs/")
assert str(configure.fragment_path("hw/e1000e")).startswith(site + "/pvmatrix/kconfigs/hw/")
assert str(spec.DEFAULT) == site + "/pvmatrix/specs/default.toml"
assert spec.load(None).name == "default"
assert (paths.DATA / "roles.toml").is_file()
print("ok")
"""


def test_built_package_carries_kconfigs_and_the_default_spec(tmp_path):
    src = tmp_path / "src"
    for name in ("pvmatrix", "kconfigs", "specs"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(site)],
                           cwd=src, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(src)                  # nothing may come from the source tree
    for name in ("kconfigs/xen-dom0.config", "kconfigs/hw/e1000e.config", "specs/default.toml"):
        assert (site / "pvmatrix" / name).is_file(), name
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
