"""Packaging that pyproject.toml cannot say alone: the zoo and the spec schema ship from where they live.

`specs/` (the zoo) is installed as the package data folder `netspec/specs/`, and `docs/netspec.schema.json`
as `netspec/docs/netspec.schema.json`, by a package-dir mapping: one copy of each in the repository, and
a spec's `$schema=../docs/netspec.schema.json` line resolves in both layouts. Everything else is in
pyproject.toml.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["netspec", "netspec.*"]) + ["netspec.specs", "netspec.docs"],
    package_dir={"netspec.specs": "specs", "netspec.docs": "docs"},
    package_data={
        "netspec": ["blocks/*.yaml", "reference_keys/*/*.keys", "htmlreport/assets/*"],
        "netspec.specs": ["*.yaml", "experiments/*.yaml"],
        "netspec.docs": ["netspec.schema.json"],
    },
    exclude_package_data={"netspec.docs": ["*.md", "*.png", "*.svg"]},
)
