"""Tiny models with random weights, saved in the same layouts as real ones.

They load through exactly the code path a user's model takes (`local-dir:`),
so tests exercise real open_clip forward passes in milliseconds, offline.
"""

from __future__ import annotations

import json
import tempfile
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


# A tiny faster-whisper (CTranslate2) model: a byte-level BPE trained here on a
# few sentences, Whisper's special tokens in Whisper's order, a random-weight
# transformers Whisper converted by CTranslate2's own converter. Random weights
# say nonsense, with timestamps that can fall past the end of the audio.

# Whisper's 99 language codes, in token order (<|en|> ... <|su|>), as in
# faster_whisper.tokenizer._LANGUAGE_CODES / openai whisper tokenizer.LANGUAGES.
LANGUAGES = [
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "ko",
    "fr",
    "ja",
    "pt",
    "tr",
    "pl",
    "ca",
    "nl",
    "ar",
    "sv",
    "it",
    "id",
    "hi",
    "fi",
    "vi",
    "he",
    "uk",
    "el",
    "ms",
    "cs",
    "ro",
    "da",
    "hu",
    "ta",
    "no",
    "th",
    "ur",
    "hr",
    "bg",
    "lt",
    "la",
    "mi",
    "ml",
    "cy",
    "sk",
    "te",
    "fa",
    "lv",
    "bn",
    "sr",
    "az",
    "sl",
    "kn",
    "et",
    "mk",
    "br",
    "eu",
    "is",
    "hy",
    "ne",
    "mn",
    "bs",
    "kk",
    "sq",
    "sw",
    "gl",
    "mr",
    "pa",
    "si",
    "km",
    "sn",
    "yo",
    "so",
    "af",
    "oc",
    "ka",
    "be",
    "tg",
    "sd",
    "gu",
    "am",
    "yi",
    "lo",
    "uz",
    "fo",
    "ht",
    "ps",
    "tk",
    "nn",
    "mt",
    "sa",
    "lb",
    "my",
    "bo",
    "tl",
    "mg",
    "as",
    "tt",
    "haw",
    "ln",
    "ha",
    "ba",
    "jw",
    "su",
]

SPECIALS_AFTER_LANGS = (
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)
N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>

_SENTENCES = [
    "The quarterly report shows that revenue grew by twelve percent.",
    "Please remember to bring the orange notebook to the meeting on Thursday.",
    "Sprint goal: orchid migration. Welcome to Briskwater harbour lights festival.",
    "hello world, this is a tiny whisper model built offline for tests.",
    "one two three four five six seven eight nine ten zero",
]


def _build_tokenizer(multilingual_ids: bool, vocab_pad_to: int | None):
    """Byte-level BPE + Whisper's special tokens in Whisper's order.

    vocab_pad_to: if set, the text vocabulary is padded with unreachable filler tokens to
    this many entries, so that <|endoftext|> gets id `vocab_pad_to` as in the real models
    (50257 multilingual, 50256 English-only).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_SENTENCES * 4, trainer=trainer)

    if vocab_pad_to is not None:
        data = json.loads(tok.to_str())
        vocab = data["model"]["vocab"]
        i = 0
        # CTranslate2 >= 4.7 (PR #2000, src/models/whisper.cc) decides is_multilingual by
        # `vocabulary.to_id("") != unk_id`: the multilingual Whisper vocabulary has an
        # empty-string text token at id 50256 (the English-only one does not).
        target = vocab_pad_to - 1 if multilingual_ids else vocab_pad_to
        while len(vocab) < target:
            name = f"~{i}~"  # printable ASCII: valid for the ByteLevel decoder; never merged
            if name not in vocab:
                vocab[name] = len(vocab)
            i += 1
        if multilingual_ids:
            vocab[""] = len(vocab)
        tok = Tokenizer.from_str(json.dumps(data))

    specials = ["<|endoftext|>", "<|startoftranscript|>"]
    specials += [f"<|{code}|>" for code in LANGUAGES]
    specials += list(SPECIALS_AFTER_LANGS)
    specials += ["<|%.2f|>" % (i * 0.02) for i in range(N_TIMESTAMPS)]
    tok.add_special_tokens(specials)
    return tok


def build_tiny_whisper(
    folder: Path,
    seed: int = 0,
    *,
    d_model: int = 64,
    encoder_layers: int = 1,
    decoder_layers: int = 1,
    heads: int = 2,
    ffn_dim: int | None = None,
    n_mels: int = 80,
    multilingual: bool = False,
    real_vocab: bool = False,
    quantization: str | None = None,
) -> Path:
    """Write a random-weight CTranslate2 Whisper model to `folder` and return it.

    `folder` must not exist or be empty. Deterministic for a given seed (weights come from
    torch.manual_seed(seed)). quantization: None keeps float32 weights in model.bin; "int8"
    stores int8 weights (smaller, faster to load; the compute_type passed to WhisperModel
    decides the compute precision either way).
    """
    import torch
    import transformers
    from ctranslate2.converters import TransformersConverter

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")

    pad_to = None
    if real_vocab or multilingual:
        pad_to = 50257 if multilingual else 50256
    tok = _build_tokenizer(multilingual, pad_to)
    vocab_size = tok.get_vocab_size()
    if multilingual:
        assert vocab_size == 51865, vocab_size
    elif real_vocab:
        assert vocab_size == 51864, vocab_size

    eot = tok.token_to_id("<|endoftext|>")
    sot = tok.token_to_id("<|startoftranscript|>")
    no_ts = tok.token_to_id("<|notimestamps|>")
    lang_to_id = {f"<|{c}|>": tok.token_to_id(f"<|{c}|>") for c in LANGUAGES}

    config = transformers.WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim or 4 * d_model,
        decoder_ffn_dim=ffn_dim or 4 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
    )
    torch.manual_seed(seed)
    model = transformers.WhisperForConditionalGeneration(config).eval()

    gen = transformers.GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        no_timestamps_token_id=no_ts,
        lang_to_id=lang_to_id,
        task_to_id={
            "translate": tok.token_to_id("<|translate|>"),
            "transcribe": tok.token_to_id("<|transcribe|>"),
        },
        is_multilingual=multilingual,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
        # (layer, head) pairs used by word_timestamps' cross-attention DTW
        alignment_heads=[[decoder_layers - 1, h] for h in range(heads)],
        max_length=448,
    )
    model.generation_config = gen

    with tempfile.TemporaryDirectory(prefix="tiny-whisper-hf-") as hf:
        hf = Path(hf)
        model.save_pretrained(hf)
        fast = transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            unk_token="<|endoftext|>",
        )
        fast.save_pretrained(hf)
        tok.save(str(hf / "tokenizer.json"))  # the exact tokenizers.Tokenizer
        TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(
            str(folder), quantization=quantization, force=True
        )

    # The converter writes the vocabulary from the transformers tokenizer's get_vocab(),
    # which need not match the ids of tokenizer.json; rewrite it in id order.
    tokens = [tok.id_to_token(i) for i in range(vocab_size)]
    (folder / "vocabulary.json").write_text(json.dumps(tokens, ensure_ascii=False))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "chunk_length": 30,
                "feature_size": n_mels,
                "hop_length": 160,
                "n_fft": 400,
                "n_samples": 480000,
                "nb_max_frames": 3000,
                "sampling_rate": 16000,
            }
        )
    )
    return folder
