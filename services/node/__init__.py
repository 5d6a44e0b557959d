"""A node: one member's validator and service replicas in one process (DESIGN §6 Nodes)."""
