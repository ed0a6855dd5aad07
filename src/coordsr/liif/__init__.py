"""Local implicit image function: a trained model that upscales at any scale (issue #6)."""
