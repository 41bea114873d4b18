"""scan2conv: turn a scanning MLP into the equivalent Conv1d stacks, and prove they agree."""
__version__ = "0.1.0"
