"""The runtime core: container state and the lifecycle operations."""
