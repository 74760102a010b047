"""Dataset steps: scanning image folders, renaming, captions and image metadata."""
