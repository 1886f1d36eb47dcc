"""Asterisk side: AMI codec, AMI client, call tracker and trace playback."""
