"""machine layer (see DESIGN §2)."""
