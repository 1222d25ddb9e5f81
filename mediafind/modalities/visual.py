"""How things look: photos and video frames, embedded with an open_clip model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mediafind import config
from mediafind.db import NewSegment
from mediafind.errors import MediaError, UsageError
from mediafind.modalities.base import (
    Decoded,
    DecodeOptions,
    Example,
    Progress,
    VectorModality,
    mean_direction,
)

if TYPE_CHECKING:
    import numpy as np

    from mediafind.models.clip import ClipEmbedder


class Visual(VectorModality):
    name = "visual"
    noun = "picture"
    kinds = ("image", "video")
    essential_for = ("image", "video")
    offers = ("pictures",)
    option = "--model"
    argument = "model"
    env = "MEDIAFIND_MODEL"
    model_help = "open_clip NAME:PRETRAINED, hf-hub:ORG/REPO or a model folder (local-dir:PATH)."
    config_key = "model"
    # ViT-B-32-256 trained on DataComp-1B: as good as the best ViT-B/32 weights
    # on open_clip's text-to-image retrieval benchmarks (MSCOCO R@1 0.399,
    # Flickr30k R@1 0.649), the best B/32 zero-shot ImageNet accuracy (72.8%),
    # at 11.5 image GFLOPs, a third of ViT-B-16. The README explains the choice.
    default_model = "ViT-B-32-256:datacomp_s34b_b86k"
    example_kinds = ("image", "video")

    def embedder(self, choice: config.Choice, device: str, precision: str) -> ClipEmbedder:
        from mediafind.models.clip import ClipEmbedder

        return ClipEmbedder(choice, device=device, precision=precision)

    def decode(
        self,
        path: str,
        kind: str,
        embedder: ClipEmbedder,
        options: DecodeOptions,
        progress: Progress,
    ) -> Decoded:
        from mediafind.media.image import load_image
        from mediafind.media.video import sample_frames

        if kind == "video":
            video = sample_frames(
                path, min_side=embedder.image_size, max_gap=options.max_gap, progress=progress
            )
            starts = [frame.time for frame in video.frames]
            ends = [*starts[1:], max(video.duration, starts[-1])]
            return Decoded(
                inputs=[embedder.preprocess(frame.image) for frame in video.frames],
                segments=[
                    NewSegment(self.name, start, end)
                    for start, end in zip(starts, ends, strict=True)
                ],
                width=video.width,
                height=video.height,
                duration=video.duration,
                captured_at=video.captured_at,
                partial=video.problem,
            )
        decoded = load_image(path, embedder.image_size)
        return Decoded(
            inputs=[embedder.preprocess(decoded.image)],
            segments=[NewSegment(self.name, None, None)],
            width=decoded.width,
            height=decoded.height,
            captured_at=decoded.captured_at,
        )

    def embed_example(self, example: Example, embedder: ClipEmbedder) -> np.ndarray:
        """A photo, a video frame, or a whole video (mean of its kept frames)."""
        from mediafind.media.image import load_image
        from mediafind.media.video import frame_at, sample_frames
        from mediafind.scan import VIDEO_EXTENSIONS

        size = embedder.image_size
        try:
            if os.path.splitext(example.path)[1].lower() in VIDEO_EXTENSIONS:
                if example.time is not None:
                    images = [frame_at(example.path, example.time, min_side=size)]
                else:
                    images = [f.image for f in sample_frames(example.path, min_side=size).frames]
            elif example.time is not None:
                raise UsageError(
                    f"{{argument}} {example.path}@...: a time goes with a video or a recording",
                    argument="like",
                )
            else:
                images = [load_image(example.path, size).image]
        except MediaError as error:
            raise UsageError(f"{{argument}} {example.path}: {error}", argument="like") from error
        return mean_direction(embedder.embed_images(images))
