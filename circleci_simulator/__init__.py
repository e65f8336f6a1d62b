"""CircleCI API v2 (and v1.1 job) simulator for tests and demos of source-circleci-ccm.

Never imported by the connector package. Stdlib plus PyYAML only.
"""
from .server import Simulator
from .settings import Faults, SimulatorSettings

__all__ = ["Simulator", "SimulatorSettings", "Faults"]
