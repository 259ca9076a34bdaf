"""storage layer (see DESIGN §2)."""
