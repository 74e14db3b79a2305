"""The rule catalogue: one module per rule, named by its code, registering itself on import."""

from jmigrate.rules.registry import all_rules

all_rules()  # importing the package loads every rule module
