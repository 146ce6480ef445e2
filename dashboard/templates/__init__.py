"""The Templates page: how each template (or metadata value) fits its sandboxes, and what
they used."""
