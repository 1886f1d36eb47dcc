"""ACD: agents, queues and routing policies (issue: ACD)."""
