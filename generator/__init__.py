"""Skeletons, cameras, pose sources, the built-in player and the dataset store."""
