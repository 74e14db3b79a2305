"""The rule catalogue: one module per rule, named by its code, registering itself on import."""
