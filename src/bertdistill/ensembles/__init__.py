"""The ensembles stage: averages of trained students' probabilities, members and weights chosen on val only
(mean, val-log-loss weights, greedy selection within a latency budget)."""
