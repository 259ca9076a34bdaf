"""wire layer (see DESIGN §2)."""
