"""raft layer (see DESIGN §2)."""
