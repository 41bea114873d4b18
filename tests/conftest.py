"""Shared test set-up: Keras runs on the torch backend (set before anything imports keras)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
