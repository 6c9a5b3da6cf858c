"""Face liveness / presentation-attack detection: PAD models, explainable signal checks, a
learned fusion that reports each check's contribution, and challenge-response liveness."""
