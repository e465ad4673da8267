"""Shipping a trained model without bertdistill: self-contained bundles of students and ensembles."""
