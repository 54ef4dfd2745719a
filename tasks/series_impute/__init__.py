"""Fill the gaps of a multivariate series with a bidirectional recurrent imputer (after
BRITS), beside mean, last-observation, linear and seasonal fills."""
