"""The package's metadata: dependency bounds, extras, license, typing marker."""

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _requirements(value):
    return [
        Requirement(line.strip())
        for line in value.strip().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_core_has_no_torch_and_the_extras_pull_it(cfg):
    core = {r.name.lower() for r in _requirements(cfg["options"]["install_requires"])}
    assert not core & {"torch", "transformers", "safetensors"}, core
    extras = cfg["options.extras_require"]
    deep = {r.name.lower() for r in _requirements(extras["deep"])}
    assert {"torch", "transformers", "safetensors"} <= deep
    # the tests and the gallery run the deep estimators
    for extra in ("test", "docs"):
        self_refs = [r for r in _requirements(extras[extra]) if r.name == "skxmc"]
        assert self_refs and "deep" in self_refs[0].extras, extra


def test_every_core_dependency_is_imported(cfg):
    # a declared dependency nobody imports is dead weight (joblib was one)
    source = "\n".join(p.read_text() for p in (ROOT / "skxmc").rglob("*.py"))
    modules = {"scikit-learn": "sklearn"}
    for req in _requirements(cfg["options"]["install_requires"]):
        module = modules.get(req.name, req.name)
        pattern = rf"^\s*(import|from) {re.escape(module)}\b"
        assert re.search(pattern, source, flags=re.M), f"{req.name} never imported"


@pytest.mark.parametrize("module", ["sklearn", "numpy", "scipy"])
def test_installed_versions_satisfy_the_bounds(cfg, module):
    """The bounds parse, and this environment lies within them.

    CI runs the newest scikit-learn the bounds allow; CONTRIBUTING.md says how
    to run the suite with the lowest (``pip install scikit-learn==1.6.*``).
    """
    import importlib

    names = {"sklearn": "scikit-learn"}
    name = names.get(module, module)
    reqs = {r.name: r for r in _requirements(cfg["options"]["install_requires"])}
    version = importlib.import_module(module).__version__
    assert reqs[name].specifier.contains(version, prereleases=True), (
        f"{name} {version} is outside setup.cfg's {reqs[name].specifier}"
    )


def test_sklearn_bounds_are_the_documented_range(cfg):
    reqs = {r.name: r for r in _requirements(cfg["options"]["install_requires"])}
    spec = reqs["scikit-learn"].specifier
    assert spec.contains("1.6.0") and spec.contains("1.9.9")
    assert not spec.contains("1.5.2") and not spec.contains("1.10.0")


def test_license_file_matches_the_metadata(cfg):
    assert cfg["metadata"]["license"] == "BSD-3-Clause"
    text = (ROOT / cfg["metadata"]["license_files"].strip()).read_text()
    assert text.startswith("BSD 3-Clause License")


def test_typed_marker_is_shipped(cfg):
    assert (ROOT / "skxmc" / "py.typed").is_file()
    assert "py.typed" in cfg["options.package_data"]["skxmc"]


def test_pre_commit_runs_ruff_and_ruff_format():
    text = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "id: ruff\n" in text and "id: ruff-format" in text


def test_console_script_points_at_the_cli(cfg):
    from skxmc._cli import main

    scripts = cfg["options.entry_points"]["console_scripts"]
    assert scripts.strip() == "skxmc = skxmc._cli:main"
    assert callable(main)
