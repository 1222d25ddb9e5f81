"""Decoding and sampling of media files (Pillow for photos)."""
