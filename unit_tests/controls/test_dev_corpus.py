"""Accuracy gate on the labelled dev corpus, dev/ and dev-more/ (never the held-out eval folder)."""
import importlib.util
from pathlib import Path

from source_circleci_ccm.controls import load_catalogue

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared/corpus/circleci-configs"
FOLDERS = [CORPUS / "dev", CORPUS / "dev-more"]
LABELS = ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning",
          "automated_tests", "has_deploy", "approval_gate_before_deploy", "tests_before_deploy")


def _scorer():
    spec = importlib.util.spec_from_file_location("score_controls", REPO / "scripts/score_controls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_and_dev_more_corpus_precision_and_recall_at_least_095(require_shared):
    for folder in FOLDERS:
        require_shared(folder / "labels.json", f"shared corpus labels ({folder.name}/labels.json)")
    scorer = _scorer()
    counts, mistakes = scorer.score(FOLDERS, load_catalogue())
    for label in LABELS:
        precision, recall = scorer.metrics(counts[label])
        assert precision >= 0.95 and recall >= 0.95, (label, counts[label], mistakes)
