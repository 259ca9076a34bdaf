"""runtime layer (see DESIGN §2)."""
