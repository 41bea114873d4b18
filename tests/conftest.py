"""Shared test set-up: Keras runs on the torch backend (set before anything imports keras)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

# Hypothesis profiles: "ci" (the default) never times examples out and prints the blob that
# replays a failure; "dev" (HYPOTHESIS_PROFILE=dev) runs fewer examples where a test does not
# fix its own count.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import pathlib  # noqa: E402

import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fixtures():
    """The fixtures folder (files rebuilt by fixtures/make_fixtures.py)."""
    return FIXTURES
