"""CTI panel: agent screen pops and supervisor wallboard (issue: CTI panel)."""
