"""One-month-ahead rainfall forecast beside AR(12), seasonal naive, climatology and persistence."""
