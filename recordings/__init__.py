"""Call recordings: policy, pause, playback and retention (issue: recordings)."""
