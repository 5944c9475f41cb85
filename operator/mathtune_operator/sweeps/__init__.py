"""MathFinetuneSweep: the search (Optuna), its trials (MathFinetunes the
sweep owns) and one pass over a sweep. Pure: the controller that does the
API calls is sweep_runtime."""
