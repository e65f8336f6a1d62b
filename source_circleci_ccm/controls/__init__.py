"""Security-controls evaluator for CircleCI pipelines (rules are data: catalogue.yaml)."""
from .catalogue import Catalogue, Control, Rule, load_catalogue, load_rules_file
from .evaluate import evaluate_config
from .project_settings import evaluate_contexts, evaluate_project_settings
from .results import ControlResult, evidence
from .safe_yaml import ParsedConfig, Unparseable, parse_config

__all__ = [
    "Catalogue", "Control", "Rule", "ControlResult", "ParsedConfig", "Unparseable",
    "load_catalogue", "load_rules_file", "parse_config", "evaluate_config",
    "evaluate_project_settings", "evaluate_contexts", "evidence",
]
