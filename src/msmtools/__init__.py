"""msmtools: Model Spec Midtraining experiments as a pipeline of small JSONL-in, JSONL-out commands."""

__version__ = "0.1.0"
