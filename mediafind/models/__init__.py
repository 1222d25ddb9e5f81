"""The model runtimes: open_clip (clip.py) and CLAP (clap.py), on torch or, on
the CPU, on ONNX Runtime (fast.py). Each implements the Embedder interface of
`mediafind.modalities.base`; `common.LazyModel` is what they share."""
