"""Orchestra: agent teams that learn from their own traces."""
