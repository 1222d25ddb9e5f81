"""Tiny models with random weights, saved in the same layouts as real ones.

They load through exactly the code path a user's model takes (`local-dir:`),
so tests exercise real open_clip forward passes in milliseconds, offline.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Write an open_clip `local-dir:` model folder with random weights."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    state = {name: tensor.contiguous().clone() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": {}}, indent=2)
    )
    return folder


def build_tiny_clap(folder: Path, seed: int = 0) -> Path:
    """Write a transformers CLAP folder (model, feature extractor, tokenizer) with
    random weights and a byte-level BPE vocabulary trained here in milliseconds."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    folder.mkdir(parents=True, exist_ok=True)
    sentence = (
        "dog barking applause piano music rain thunder speech birds singing car engine "
        "siren laughter crowd guitar drums wind water footsteps door knock bell"
    )
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        [sentence] * 20,
        vocab_size=300,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    vocab_dir = folder / "bpe"
    vocab_dir.mkdir(exist_ok=True)
    trainer.save_model(str(vocab_dir))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(vocab_dir / "vocab.json"),
        merges_file=str(vocab_dir / "merges.txt"),
        model_max_length=64,
    )
    text = ClapTextConfig(
        vocab_size=tokenizer.vocab_size + 8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=70,
        projection_dim=16,
    )
    audio = ClapAudioConfig(
        patch_embeds_hidden_size=8,
        hidden_size=64,
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 2, 2],
        projection_dim=16,
    )
    torch.manual_seed(seed)
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
    ClapModel(config).save_pretrained(str(folder))
    # Windows are never longer than the model's 10 s, so truncation never
    # applies; "rand_trunc" is what unfused CLAP checkpoints ship with.
    extractor = ClapFeatureExtractor(truncation="rand_trunc")
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder
