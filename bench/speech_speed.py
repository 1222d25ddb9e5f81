"""Speech: the words pass's speed, and its memory on a three-hour recording.

Builds (once, into --workdir) a Whisper model of the chosen architecture with
random weights (the same compute as the real weights, no download), converted
by CTranslate2 as faster-whisper's models are, and generates:

- speech-dense audio: espeak-ng sentences back to back, --minutes long;
- audio without speech: music-like tones, noise and silence, 10 minutes;
- (with --long) a three-hour recording, mostly quiet, a sentence every ten
  minutes, to measure peak memory (one process, resource.getrusage).

Times the speech modality's own `decode` (voice activity detection, then
Whisper on the speech found), the whole words pass for one file. Random
weights decode a different number of tokens than real ones (often until the
window is full), so the table also gives what decoding costs per token and
the encoder per second of speech, and projects the real-time factor for real
speech at about 3 tokens a second.

    python bench/speech_speed.py --model base
    python bench/speech_speed.py --model small --minutes 2
    python bench/speech_speed.py --long          # the three-hour memory run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

# The real architectures (openai/whisper-* and distil-whisper config.json).
ARCHITECTURES = {
    "tiny": dict(d_model=384, encoder_layers=4, decoder_layers=4, heads=6, multilingual=True),
    "base": dict(d_model=512, encoder_layers=6, decoder_layers=6, heads=8, multilingual=True),
    "small": dict(d_model=768, encoder_layers=12, decoder_layers=12, heads=12, multilingual=True),
    "distil-small.en": dict(
        d_model=768, encoder_layers=12, decoder_layers=4, heads=12, multilingual=False
    ),
}
RATE = 16_000
SENTENCES = [
    "We parked the car on level three near the blue door.",
    "Happy birthday grandma, we all miss you very much.",
    "Remember to bring the orange notebook to the meeting on Thursday.",
    "The quarterly report shows that revenue grew by twelve percent.",
    "Let us take the train to the coast next weekend if the weather holds.",
]
TOKENS_PER_SECOND = 3.0  # of real speech, Whisper's tokenizer on English
CHUNK_SECONDS = 28  # the speech modality's longest chunk


def build_model(folder: Path, name: str) -> Path:
    if not (folder / "model.bin").exists():
        from tiny_models import build_tiny_whisper

        dims = dict(ARCHITECTURES[name])
        multilingual = bool(dims.pop("multilingual"))
        build_tiny_whisper(
            folder,
            seed=0,
            multilingual=multilingual,
            real_vocab=True,
            quantization="int8",
            **dims,  # type: ignore[arg-type]
        )
    return folder


def spoken(text: str, work: Path) -> object:
    import numpy as np

    path = work / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "-s", "160", text], check=True)
    with wave.open(str(path)) as said:
        rate = said.getframerate()
        samples = np.frombuffer(said.readframes(said.getnframes()), dtype=np.int16)
    samples = samples.astype(np.float32) / 32768.0
    positions = np.arange(0, len(samples), rate / RATE)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def make_audio(work: Path, minutes: float) -> dict[str, Path]:
    import numpy as np
    from media_factory import write_audio

    work.mkdir(parents=True, exist_ok=True)
    dense = work / f"speech-{minutes:g}min.flac"
    if not dense.exists():
        said = [spoken(text, work) for text in SENTENCES]
        pause = np.zeros(RATE // 3, dtype=np.float32)
        pieces, length = [], 0
        while length < minutes * 60 * RATE:
            for samples in said:
                pieces += [samples, pause]
                length += len(samples) + len(pause)  # type: ignore[arg-type]
        write_audio(
            dense, np.concatenate(pieces)[: int(minutes * 60 * RATE)], rate=RATE, codec="flac"
        )
    quiet = work / "no-speech-10min.flac"
    if not quiet.exists():
        t = np.arange(600 * RATE) / RATE
        rng = np.random.default_rng(0)
        notes = 220 * 2 ** (np.floor(t / 0.5) % 12 / 12)
        music = 0.3 * np.sin(2 * np.pi * notes * t)
        music[200 * RATE : 400 * RATE] = 0.2 * rng.standard_normal(200 * RATE)
        music[400 * RATE :] = 0.0
        write_audio(quiet, music.astype(np.float32), rate=RATE, codec="flac")
    return {"speech-dense": dense, "no speech (music, noise, silence)": quiet}


def make_long(work: Path) -> Path:
    """Three hours, mostly quiet, a sentence every ten minutes (written in
    pieces, so making it needs no three hours of samples in memory)."""
    import av
    import numpy as np

    path = work / "three-hours.opus"
    if path.exists():
        return path
    said = spoken(SENTENCES[0], work)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler_rate = 48000
        frame_size = 960
        pts = 0
        for minute in range(180):
            block = np.zeros(60 * resampler_rate, dtype=np.float32)
            if minute % 10 == 5:
                up = np.interp(
                    np.arange(0, len(said) * 3) / 3.0,
                    np.arange(len(said)),
                    said,  # type: ignore[arg-type]
                ).astype(np.float32)
                block[: len(up)] = up
            block += 0.002 * np.random.default_rng(minute).standard_normal(len(block)).astype(
                np.float32
            )
            for at in range(0, len(block), frame_size):
                chunk = np.ascontiguousarray(block[None, at : at + frame_size])
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts = resampler_rate, pts
                pts += chunk.shape[1]
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def measure(model_dir: Path, path: Path) -> dict[str, float]:
    """The words pass for one file, in this process, with its token count."""
    from mediafind.config import Choice
    from mediafind.modalities.base import DecodeOptions
    from mediafind.modalities.speech import Speech
    from mediafind.models.whisper import WhisperTranscriber

    transcriber = WhisperTranscriber(Choice(str(model_dir), "option"), device="cpu")
    transcriber.prepare()
    model = transcriber._load()
    tokens = [0]
    real = model.transcribe

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        segments, info = real(*args, **kwargs)

        def each():  # type: ignore[no-untyped-def]
            for segment in segments:
                tokens[0] += len(segment.tokens)
                yield segment

        return each(), info

    model.transcribe = counting
    speech_seconds = [0.0]
    real_regions = transcriber.speech_regions

    def regions(samples):  # type: ignore[no-untyped-def]
        found = real_regions(samples)
        speech_seconds[0] += sum(end - start for start, end in found) / RATE
        return found

    transcriber.speech_regions = regions  # type: ignore[method-assign]
    started = time.perf_counter()
    Speech().decode(
        str(path), "audio", transcriber, DecodeOptions(language="en"), lambda p, d: None
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": tokens[0], "speech_seconds": speech_seconds[0]}


def components(model_dir: Path) -> dict[str, float]:
    """What one 28-second chunk of real speech costs, from its parts, timed on
    random features: the encoder (the same work whatever is said), beam
    search for a given number of tokens (end of text suppressed, so random
    weights decode exactly as many as asked), and the word-time alignment."""
    import ctranslate2
    import numpy as np
    from tokenizers import Tokenizer

    from mediafind.config import usable_cores

    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type="int8", intra_threads=usable_cores()
    )
    vocab = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    start = [vocab.token_to_id("<|startoftranscript|>")]
    if model.is_multilingual:
        start += [vocab.token_to_id("<|en|>"), vocab.token_to_id("<|transcribe|>")]
    start.append(vocab.token_to_id("<|notimestamps|>"))
    end_of_text = vocab.token_to_id("<|endoftext|>")
    mel = np.random.default_rng(0).standard_normal((1, model.n_mels, 3000)).astype(np.float32)
    features = ctranslate2.StorageView.from_array(mel)

    def best(job, times: int = 3) -> float:  # type: ignore[no-untyped-def]
        seconds = []
        for _ in range(times):
            started = time.perf_counter()
            job()
            seconds.append(time.perf_counter() - started)
        return min(seconds)

    encoded = model.encode(features)
    encoder = best(lambda: model.encode(features))
    per_chunk = int(TOKENS_PER_SECOND * CHUNK_SECONDS)

    def decode(length: int) -> float:
        return best(
            lambda: model.generate(
                encoded, [start], beam_size=5, max_length=length, suppress_tokens=[-1, end_of_text]
            )
        )

    short, full = decode(8), decode(8 + per_chunk)
    text = list(range(1000, 1000 + per_chunk))
    align = best(lambda: model.align(encoded, start, [text], 1400))
    return {
        "encoder": encoder,
        "per_token": (full - short) / per_chunk,
        "decode": full,
        "align": align,
        "chunk": encoder + full + align,
    }


def duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return container.duration / 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="base", choices=sorted(ARCHITECTURES))
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench"))
    parser.add_argument("--long", action="store_true", help="the three-hour memory run")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--parts", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    model_dir = args.workdir / f"whisper-{args.model}"
    if args.one or args.parts or args.build:
        build_model(model_dir, args.model)
        if args.one:
            figures = measure(model_dir, args.one)
            figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps(figures))
        elif args.parts:
            print(json.dumps(components(model_dir)))
        return

    def child(*extra: str) -> dict[str, float]:
        # Each measurement in a fresh process: peak memory (ru_maxrss) survives
        # fork and exec, so this process stays small and builds nothing itself.
        command = [sys.executable, __file__, "--model", args.model, "--workdir", str(args.workdir)]
        run = subprocess.run([*command, *extra], capture_output=True, text=True, check=True)
        return json.loads(run.stdout.splitlines()[-1]) if extra != ("--build",) else {}

    child("--build")
    files = make_audio(args.workdir / "speech", args.minutes)
    if args.long:
        files = {"three hours, a sentence every ten minutes": make_long(args.workdir / "speech")}
    parts = child("--parts")
    per_chunk = int(TOKENS_PER_SECOND * CHUNK_SECONDS)
    print(f"Whisper {args.model} architecture (random weights), int8, CPU, beam 5\n")
    print(
        f"One {CHUNK_SECONDS}-second chunk of real speech ({per_chunk} tokens at "
        f"{TOKENS_PER_SECOND:g} a second), from its parts:\n"
    )
    print("| encoder | ms per token | decoding | word times | chunk | real-time factor |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {parts['encoder']:.2f} s | {1000 * parts['per_token']:.1f} | {parts['decode']:.2f} s "
        f"| {parts['align']:.2f} s | {parts['chunk']:.2f} s "
        f"| {CHUNK_SECONDS / parts['chunk']:.1f}x |\n"
    )
    print("The whole words pass on generated files, one process per file:\n")
    print("| audio | length | speech found | seconds | real-time factor | tokens | peak memory |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path in files.items():
        figures = child("--one", str(path))
        length = duration(path)
        print(
            f"| {name} | {length / 60:.1f} min | {figures['speech_seconds'] / 60:.1f} min | "
            f"{figures['seconds']:.1f} | {length / figures['seconds']:.0f}x | "
            f"{int(figures['tokens'])} | {figures['peak_mb']:.0f} MB |"
        )
    print(
        "\nRandom weights rarely stop where real ones do: faster-whisper decodes their "
        "output window after window, so the speech row is an upper bound; the chunk table "
        "gives what real speech costs."
    )


if __name__ == "__main__":
    main()
