"""name_classifier: which of 18 languages a surname comes from, read character by character."""
