"""name_generator: a character-level language model that writes surnames of a given language."""
