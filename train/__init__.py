"""Lifting networks, geometric search, data mixing, training and evaluation."""
