"""Packaging of the data folders that stay at the top of the repository.

kconfigs/ and specs/ are installed inside the package, as pvmatrix/kconfigs
and pvmatrix/specs (pvmatrix.paths finds them either way). pyproject.toml
cannot say this: a mapped folder is a package that packages.find cannot see.
Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
MAPPED = {"pvmatrix.kconfigs": "kconfigs", "pvmatrix.specs": "specs"}


def mapped_packages() -> list[str]:
    """Every folder under a mapped folder, as a package name."""
    names = []
    for package, folder in MAPPED.items():
        root = HERE / folder
        for sub in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = sub.relative_to(root).parts
            names.append(".".join([package, *rel]))
    return names


setup(
    packages=find_namespace_packages(include=["pvmatrix", "pvmatrix.*"]) + mapped_packages(),
    package_dir={package: folder for package, folder in MAPPED.items()},
    package_data={"pvmatrix": ["data/*", "data/**/*"],
                  **{name: ["*.config", "*.toml"] for name in mapped_packages()}},
)
