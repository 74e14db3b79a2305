"""Command-line interface: one module per command group, each a thin wrapper over one library call."""
