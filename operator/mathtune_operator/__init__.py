"""MathFinetune operator: reconciles MathFinetune runs into one Kubernetes Job per stage.

Layout: `main` holds only kopf handlers; `plan`, `builders`, `status`,
`results`, `progress` and `metrics` are pure; `children` talks to the API
server; `reconcile` ties one pass together.
"""
__version__ = "0.1.0"
