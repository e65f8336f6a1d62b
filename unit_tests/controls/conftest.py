import pytest

from source_circleci_ccm.controls import load_catalogue


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue()
