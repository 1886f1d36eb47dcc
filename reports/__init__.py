"""Report jobs: waiting time, handle time, abandonment, service level, staffing."""
