"""The kernel every other package stands on, depending on nothing of ours: exceptions, settings, database models and
migrations, the store of finished calls, and the value types packages pass each other (call records, domain events,
who is asking)."""
