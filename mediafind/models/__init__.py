"""Embedding models behind one small interface (see `clip.Embedder`)."""
