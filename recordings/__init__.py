"""Call recordings: policy per queue, consent, pauses for card data, storage with optional encryption, playback and retention."""
