"""The OOM incidents page: the list and one incident opened (`page`, `data`), and the
incident's numbers, words and export (`report`)."""
