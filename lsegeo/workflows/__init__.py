"""One module per command: wires a validated configuration to settings and steps; nothing else does."""
