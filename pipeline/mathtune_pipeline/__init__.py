"""MathFinetune stage commands (prepare, tokenize, train, merge, evaluate, predict, report).

No Kubernetes client lives here: the operator talks to a stage only through its
command line and the JSON result it prints (docs/contract.md).
"""

__version__ = "0.1.0"
