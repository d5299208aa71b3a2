"""XR-Linear, the metrics, the loaders and save/load work without torch.

torch and transformers are the ``deep`` extra (setup.cfg): a subprocess hides
them with a ``sys.meta_path`` finder, as on a machine where they are not
installed, and runs XR-Linear end to end on the bundled sample.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HIDE = """
import importlib.abc, sys

class _NoDeep(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"torch", "transformers", "safetensors"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, _NoDeep())
"""


def _run_without_torch(code, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = tmp_path / "script.py"
    script.write_text(HIDE + textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_finder_really_hides_torch(tmp_path):
    # guards the guard: with the finder on, importing torch fails
    out = _run_without_torch(
        """
        try:
            import torch
        except ModuleNotFoundError as exc:
            print("hidden", exc.name)
        """,
        tmp_path,
    )
    assert out.strip() == "hidden torch"


def test_xr_linear_without_torch(tmp_path):
    out = _run_without_torch(
        """
        import pickle, sys
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        import skxmc
        from skxmc import XRLinearClassifier, make_xmc_pipeline
        from skxmc.datasets import load_debian_packages_sample
        from skxmc.metrics import precision_at_k, xmc_report

        d = load_debian_packages_sample()
        n = 600
        clf = make_xmc_pipeline(
            TfidfVectorizer(sublinear_tf=True), XRLinearClassifier(random_state=0)
        )
        clf.fit(d.text_train[:n], d.Y_train[:n])
        scores, labels = clf.predict_topk(d.text_test[:500], k=5)
        report = xmc_report(d.Y_test[:500], (scores, labels), k=(1, 5))
        skxmc.save(clf, "model")
        loaded = skxmc.load("model")
        scores2, labels2 = loaded.predict_topk(d.text_test[:500], k=5)
        assert np.array_equal(labels, labels2) and np.allclose(scores, scores2)
        again = pickle.loads(pickle.dumps(clf)).predict_topk(d.text_test[:500], k=5)
        assert np.array_equal(labels, again[1])
        try:
            skxmc.XRTransformerClassifier
        except ModuleNotFoundError as exc:
            assert "skxmc[deep]" in str(exc), exc
        else:
            raise AssertionError("XRTransformerClassifier imported without torch")
        deep = sorted(
            m for m in sys.modules if m.split(".")[0] in {"torch", "transformers"}
        )
        print(report["P@1"], deep)
        """,
        tmp_path,
    )
    p1, deep = out.strip().split(" ", 1)
    assert deep == "[]"
    # a model fitted on 600 rows ranks far above chance (0.0x) on the test rows
    assert 0.3 < float(p1) <= 1.0


def test_decaf_fit_without_torch_says_what_to_install(tmp_path):
    out = _run_without_torch(
        """
        from skxmc import DecafClassifier, LabelInfo
        from skxmc.datasets import make_xmc_classification

        X, Y = make_xmc_classification(n_samples=30, n_labels=8, random_state=0)
        try:
            text = [f"label {i}" for i in range(8)]
            DecafClassifier(n_epochs=1).fit(X, Y, label_info=LabelInfo(text=text))
        except ModuleNotFoundError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert "pip install 'skxmc[deep]'" in out
    assert "download.pytorch.org/whl/cpu" in out
