"""Drawings, icons and logos: procedural training scenes, training data and the trainer of the drawing model."""
