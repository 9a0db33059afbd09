"""Hyperparameter tuning jobs: a parent of many training jobs, searched with Optuna in ask-and-tell mode."""
