"""The registry tells everything else: a modality declares what it is, the
passes follow what modalities declare, the command line offers what the
registry holds, a modality that reads another's words is one module, files
can be indexed one by one, and the package has no import circle."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from fake_modality import FakeEmbedder, SidecarWords, text_vector, unit
from media_factory import make_audio

from mediafind import config, modalities
from mediafind.db import NewSegment, Store
from mediafind.errors import UsageError
from mediafind.index import forget_files, index_files, index_paths, passes
from mediafind.modalities.base import Decoded, DecodeOptions, Example, Progress, VectorModality
from mediafind.query import search
from mediafind.status import index_status

PACKAGE = Path(__file__).resolve().parent.parent / "mediafind"


# A modality that reads another's words -----------------------------------------


def gist_vector(text: str) -> np.ndarray:
    """A bag of words: the sum of each word's fixed direction."""
    return unit(sum(text_vector(word, 32) for word in text.lower().split()))


class Gist(VectorModality):
    """What the sidecar words are about, as vectors: a derived modality."""

    name = "gist"
    noun = "gist"
    kinds = ("audio", "video")
    option = "--gist-model"
    argument = "gist_model"
    env = "MEDIAFIND_GIST_MODEL"
    config_key = "gist_model"
    default_model = "bag-of-words"
    model_help = "Bags of words (tests only)."
    skip_option = "--no-gist"
    skip_help = "Leave out the gist."
    example_kinds = ()
    reads = ("sidecar",)
    unit = "phrase"

    def embedder(self, choice: config.Choice, device: str, precision: str) -> FakeEmbedder:
        class Bags(FakeEmbedder):
            def embed_batch(self, inputs: Sequence[Any]) -> np.ndarray:
                return np.stack([gist_vector(text) for text in inputs])

            def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
                return np.stack([gist_vector(text) for text in texts])

        return Bags(self.name, choice, 32, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        raise AssertionError("a modality that reads words never decodes a file")

    def derive(self, words: Mapping[str, Sequence[Any]], embedder: Any) -> Decoded:
        phrases = words["sidecar"]
        return Decoded(
            inputs=[text for _, _, text in phrases],
            segments=[NewSegment(self.name, start, end) for start, end, _ in phrases],
        )

    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        raise UsageError("{argument}: the gist takes no examples", argument="like")


def recordings(root: Path) -> dict[str, Path]:
    said = {
        "party": "0 2 lights off\n2 5 happy birthday dear grandma\n",
        "forecast": "0 3 rain and wind tomorrow\n",
        "hum": None,
    }
    files = {}
    for number, (name, words) in enumerate(said.items()):
        path = root / f"{name}.wav"
        make_audio(path, [("tone", 5.0 + number)])
        if words:
            Path(str(path) + ".words").write_text(words)
        files[name] = path
    return files


@pytest.fixture
def gist(fake_models: Any) -> Any:
    with modalities.registered(SidecarWords()), modalities.registered(Gist()) as registered:
        yield registered


@pytest.mark.usefixtures("gist")
def test_a_modality_that_reads_words_is_indexed_after_them_and_searched(
    tmp_path: Path, db_path: Path
):
    files = recordings(tmp_path / "memos")
    with Store.open(db_path, create=True) as store:
        summary = index_paths(store, [tmp_path / "memos"])
        assert summary.new == 3
        held = {model.modality: model.vectors for model in index_status(store).models}
        # One vector per phrase the sidecar modality stored, none for the hum.
        assert held["gist"] == 3 and held["sidecar"] == 3
        found = search(store, "birthday grandma", modalities=["gist"], limit=3)
    assert [Path(r.path).stem for r in found] == ["party", "forecast"]
    # At the phrase that says it, not at the file's first phrase.
    assert (found[0].start, found[0].end, found[0].modality) == (2.0, 5.0, "gist")
    assert found[0].path == str(files["party"])


@pytest.mark.usefixtures("gist")
def test_the_command_line_offers_what_the_registry_holds(cli, tmp_path: Path):
    recordings(tmp_path / "memos")
    index_help = cli("index", "--help").stdout
    for option in ("--gist-model", "--no-gist", "--sidecar-model", "--no-sidecar"):
        assert option in index_help
    search_help = cli("search", "--help").stdout
    assert "--gist-model" in search_help and "--no-gist" not in search_help
    assert "visual|audio|sidecar|gist" in search_help  # --modality's choices
    assert "--gist-model" in cli("serve", "--help").stdout
    assert cli("index", tmp_path / "memos", "--no-gist").exit_code == 0
    assert "gist" not in json.loads(cli("status", "--json").stdout)["models"].__repr__()
    assert cli("index", tmp_path / "memos").exit_code == 0
    status = json.loads(cli("status", "--json").stdout)
    assert "gist" in {model["modality"] for model in status["models"]}
    result = cli("search", "happy birthday", "--modality", "gist", "--json")
    assert json.loads(result.stdout)[0]["modality"] == "gist"
    # A model option of the new modality is worded with its own flag.
    other = cli("search", "x", "--gist-model", "other-bags")
    assert other.exit_code == 2 and "--gist-model" in other.stderr
    # The results page's filters list it.
    from mediafind.serve import Library

    with Store.open(tmp_path / "index.db", create=False, readonly=True) as store:
        models = modalities.models_for_index(store, searching=True)
        assert "gist" in Library(store, models).info()["modalities"]


@pytest.mark.usefixtures("gist")
def test_a_config_file_may_name_a_registered_modality_model(cli, tmp_path: Path):
    (tmp_path / "config.toml").write_text('gist_model = "bag-of-words"\n')
    recordings(tmp_path / "memos")
    assert cli("index", tmp_path / "memos").exit_code == 0
    (tmp_path / "config.toml").write_text('nonsense_model = "x"\n')
    refused = cli("index", tmp_path / "memos")
    assert refused.exit_code == 2 and "unknown setting 'nonsense_model'" in refused.stderr


# What a modality declares ----------------------------------------------------


class Named:
    def __init__(self, name: str, after: tuple[str, ...] = (), reads: tuple[str, ...] = ()):
        self.name, self.after, self.reads = name, after, reads


def names(layers: list[list[Any]]) -> list[list[str]]:
    return [[m.name for m in layer] for layer in layers]


def test_passes_follow_what_modalities_declare():
    visual, audio = Named("visual"), Named("audio")
    speech = Named("speech", after=("visual", "audio"))
    text = Named("text", after=("visual", "audio"))
    meaning = Named("meaning", reads=("speech", "text"))
    order = [meaning, text, visual, speech, audio]  # registration order means nothing
    assert names(passes(order)) == [["visual", "audio"], ["text", "speech"], ["meaning"]]
    # A modality a run leaves out holds nothing back.
    assert names(passes([meaning, text])) == [["text"], ["meaning"]]
    assert names(passes([speech])) == [["speech"]]
    with pytest.raises(ValueError, match="circle"):
        passes([Named("a", after=("b",)), Named("b", after=("a",))])


class Early(VectorModality):
    """Registered first, reading photos: not what a photo is without."""

    name = "early"
    noun = "early"
    kinds = ("image",)
    option = "--early-model"
    argument = "early_model"
    env = "MEDIAFIND_EARLY_MODEL"
    config_key = "early_model"
    default_model = "broken"
    example_kinds = ()

    def embedder(self, choice: config.Choice, device: str, precision: str) -> FakeEmbedder:
        return FakeEmbedder(self.name, choice, 2, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        raise ValueError("this reader always fails")

    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        raise UsageError("no examples")


def test_a_modality_registered_first_does_not_decide_what_a_photo_needs(
    fake_models: dict[str, Any], tmp_path: Path, db_path: Path, monkeypatch
):
    monkeypatch.setattr(modalities, "_REGISTRY", {"early": Early(), **fake_models})
    draw_photo(tmp_path / "p" / "red.jpg", COLORS["red"])
    with Store.open(db_path, create=True) as store:
        summary = index_paths(store, [tmp_path / "p"])
        status = index_status(store)
    # The photo is indexed in part (its early reader failed), not failed.
    assert (summary.new, summary.failed, summary.partial) == (1, 0, 1)
    assert {m.modality: m.vectors for m in status.models}["visual"] == 1


# Indexing given files ----------------------------------------------------------


@pytest.mark.usefixtures("fake_models")
def test_index_files_indexes_those_files_and_nothing_else(tmp_path: Path, db_path: Path):
    root = tmp_path / "Pictures"
    for name in ("red", "green", "blue"):
        draw_photo(root / f"{name}.jpg", COLORS[name])
    (root / "notes.txt").write_text("not media")
    with Store.open(db_path, create=True) as store:
        models = modalities.models_for_index(store)
        first = index_files(
            store, [root / "red.jpg", root / "notes.txt", root / "gone.jpg"], models
        )
        assert first.new == 1
        assert store.all_paths() == [str(root / "red.jpg")]
        assert store.roots() == []  # no folder remembered
        # A second call, the same models, another file: the first is kept.
        second = index_files(store, [root / "green.jpg", root / "red.jpg"], models)
        assert (second.new, second.unchanged) == (1, 1)
        assert sorted(store.all_paths()) == [str(root / "green.jpg"), str(root / "red.jpg")]
        (root / "red.jpg").unlink()
        assert forget_files(store, [root / "red.jpg", root / "never.jpg"]) == 1
        assert store.all_paths() == [str(root / "green.jpg")]
        assert store.forgotten() == []  # unlike `forget`, it comes back if it comes back


# The package's imports ---------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports anywhere (in functions too), but
    not under `if TYPE_CHECKING:`, which never runs."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level or not node.module:
                raise AssertionError(f"{path}: relative import")
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)

    Visitor().visit(ast.parse(path.read_text()))
    # The package itself (its lazy public names) is a facade, not a module
    # that others depend on.
    return {name for name in found if name in modules and name != "mediafind"}


def test_the_package_has_no_import_circle():
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {name: _imports(path, modules) for name, path in files.items() if name != "mediafind"}
    state: dict[str, str] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            circle = (*trail[trail.index(name) :], name)
            raise AssertionError("import circle: " + " -> ".join(circle))
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            visit(target, (*trail, name))
        state[name] = "done"

    for name in sorted(graph):
        visit(name, ())
    # The graph was read: the modalities import the config, the CLI the registry.
    assert "mediafind.config" in graph["mediafind.modalities.base"]
    assert "mediafind.modalities" in graph["mediafind.cli_base"]


def test_no_module_imports_another_module_private_names():
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    private = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mediafind"):
                private += [
                    f"{name}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert private == []
