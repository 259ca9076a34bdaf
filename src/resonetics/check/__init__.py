"""check layer (see DESIGN §2)."""
