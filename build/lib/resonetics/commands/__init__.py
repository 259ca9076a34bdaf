"""One module per ``resonetics`` sub-command (see ``resonetics.cli``)."""
