"""Rainfall 1-3 months ahead from four weather variables, beside the univariate network
and the baselines."""
