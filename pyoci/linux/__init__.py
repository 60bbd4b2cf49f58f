"""Linux mechanisms: one module per kernel feature the runtime drives."""
