"""A PySide6 desktop viewer for posebridge datasets."""
