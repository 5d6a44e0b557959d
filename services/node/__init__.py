"""A node: one member's validator and service replicas in one process (architecture: Nodes)."""
