"""Differential testing against the reference CLI (harn 0.9.11); see runner.py."""
