"""Packages: the repository's top-level folders install under one ``turngym`` namespace.

``envs/`` -> ``turngym.envs``, ``agents/`` -> ``turngym.agents``, ... (setuptools
``package_dir``), so site-packages holds ``turngym`` and nothing else; the folders stay where
the project keeps them. Everything else is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

FOLDERS = ("envs", "agents", "algos", "harness", "benchmarks")

packages = ["turngym"] + [f"turngym.{folder}" for folder in FOLDERS] + [
    f"turngym.{folder}.{sub}" for folder in FOLDERS for sub in find_packages(folder)]
package_dir = {"turngym": "turngym"} | {f"turngym.{folder}": folder for folder in FOLDERS}

setup(packages=packages, package_dir=package_dir)
