"""Sphinx configuration for skxmc."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import skxmc

project = "skxmc"
copyright = "2026, the skxmc developers"
version = release = skxmc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# Document what skxmc classes inherit from skxmc, not from sklearn's bases or
# torch.nn.Module, whose docstrings point into those projects' own guides.
SKLEARN_BASES = (
    "MultiOutputMixin, ClassifierMixin, BaseEstimator, ReprHTMLMixin, "
    "_HTMLDocumentationLinkMixin, _MetadataRequester, Pipeline, "
    "CallbackSupportMixin, _BaseComposition, TransformerMixin, _SetOutputMixin, "
    "Module, object"
)
autodoc_default_options = {"members": True, "inherited-members": SKLEARN_BASES}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "pydata_sphinx_theme"
html_title = f"skxmc {release}"
html_static_path = []

intersphinx_mapping = {}  # no network at build time: keep the build offline

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skxmc",),
    "abort_on_example_error": True,
    "reset_modules": (),
    "remove_config_comments": True,
}


def _skip_metadata_request_setters(app, what, name, obj, skip, options):
    # sklearn generates set_<method>_request methods whose docstrings point into
    # sklearn's own guide; skxmc does not document them separately.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_setters)
