"""The ``planted`` fixture: a private copy of the result files a test may spoil (tests/paper_checks/planted.py)."""

import pytest

from .planted import Planted, copy_results


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Planted:
    return copy_results(tmp_path, monkeypatch)
