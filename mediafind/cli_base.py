"""What every command shares: the app, how errors become one line and an
exit code, how values are parsed, and the options that recur.

Exit codes: 0 success (for search: something was found), 1 search found
nothing, 2 an error the user can fix, 130 interrupted. The library names
its arguments; `Group.invoke` words its errors with the options the user
typed. Each modality's model option and --no-X option come from the
registry (`with_model_options`): a new modality needs no edit here.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup

from mediafind import config, scan
from mediafind import modalities as registry
from mediafind.errors import IndexInterruptedError, MediafindError

EXIT_NOT_FOUND = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _skip_argument(option: str) -> str:
    """The library's name for a --no-X option: no_x."""
    return option.lstrip("-").replace("-", "_")


# The library names its arguments in its errors; people typed these.
_OPTION_NAMES = {
    "paths": "PATHS",
    "db": "--db",
    "reembed": "--reembed",
    "query": "QUERY",
    "like": "--like",
    "like_weight": "--like-weight",
    "and_": "--and",
    "not_": "--not",
    "limit": "--limit",
    "template": "--format",
    "max_gap": "--max-gap",
    "cluster": "--cluster",
    "path_map": "--path-map",
    "device": "--device",
    "precision": "--precision",
    "threshold": "--threshold",
    "kinds": "--type",
    "modalities": "--modality",
    "folders": "--in",
    "since": "--since",
    "until": "--until",
    "min_duration": "--min-duration",
    "max_duration": "--max-duration",
    "min_score": "--min-score",
}
# Where a command takes an argument under another name (similar's FILE is
# its example: "notes.txt: no such file", not "--like notes.txt: ...").
_COMMAND_OPTION_NAMES = {"similar": {"like": ""}, "serve": {"host": "--host", "port": "--port"}}


def _option_names(command: str | None) -> dict[str, str]:
    declared = {m.argument: m.option for m in registry.modalities()}
    declared.update(
        (_skip_argument(m.skip_option), m.skip_option)
        for m in registry.modalities()
        if m.skip_option
    )
    return {**_OPTION_NAMES, **declared, **_COMMAND_OPTION_NAMES.get(command or "", {})}


class Group(TyperGroup):
    """Maps the library's exceptions to one stderr line and an exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # typer writes an argument's Python type after its name in the help
        # (`QUERY <list[str]>`); the name and the help say what to give.
        for command in self.commands.values():
            for param in command.params:
                if isinstance(param, TyperArgument):
                    param.display_type_rich = _no_type  # type: ignore[method-assign]

    def invoke(self, ctx: Any) -> Any:
        import warnings

        from mediafind.output import stderr_line, summary_line

        # torch, open_clip and huggingface_hub log retries and warnings through
        # `logging`, and Pillow warns about odd files through `warnings`;
        # without this Python prints them all on stderr. What matters reaches
        # the user as mediafind's own warning or error lines.
        root = logging.getLogger()
        if not any(isinstance(handler, logging.NullHandler) for handler in root.handlers):
            root.addHandler(logging.NullHandler())
        warnings.simplefilter("ignore")
        # `kill` stops indexing the way Ctrl-C does: after the current commit.
        # (A warm answer runs a command on a service's thread, which cannot
        # set handlers; the service's own stay.)
        on_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if on_main else None
        try:
            return super().invoke(ctx)
        except IndexInterruptedError as interrupted:
            stderr_line(summary_line(interrupted.summary, interrupted=True))
            stderr_line(f"mediafind: {interrupted}")
            exit_now(EXIT_INTERRUPTED)
        except MediafindError as error:
            names = _option_names(ctx.invoked_subcommand)
            stderr_line(f"mediafind: error: {error.worded(names)}")
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            exit_now(EXIT_INTERRUPTED)
        finally:
            if on_main:
                signal.signal(signal.SIGTERM, previous)


def _no_type(ctx: Any) -> None:
    return None


def exit_now(code: int) -> None:
    """Exit without waiting for threads: a worker stuck reading a hung network
    mount or a FIFO must not keep an interrupted run alive (what was finished
    is already committed)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    help="Search your photos, videos and recordings by meaning. Nothing leaves this machine.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


# Values are parsed here rather than by typer's types, whose help shows
# internal types (`<list[str]>`, `<int range>`) and whose errors start with
# "Value error,".
def choice_parser(names: list[str], aliases: dict[str, str] | None = None) -> Any:
    """A parser that takes one of `names` (any case), or an alias of one."""
    aliases = aliases or {}

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            return str(value)
        chosen = aliases.get(value.lower(), value.lower())
        if chosen not in names:
            offered = [
                f"{name} (or {alias})" if (alias := _alias_of(name, aliases)) else name
                for name in names
            ]
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(offered)}")
        return chosen

    return parse


def _alias_of(name: str, aliases: dict[str, str]) -> str | None:
    """The first other word for `name` (not its plural), for messages."""
    return next(
        (alias for alias, target in aliases.items() if target == name and alias != name + "s"),
        None,
    )


def number_parser(low: float | None = None, high: float | None = None, whole: bool = False) -> Any:
    """A parser of a number within bounds, with an error in words."""
    what = "a whole number" if whole else "a number"

    def parse(value: Any) -> float | int:
        if not isinstance(value, str):
            return value
        try:
            number: float | int = int(value) if whole else float(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not {what}") from None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = (
                f"from {low:g} to {high:g}"
                if low is not None and high is not None
                else f"at least {low:g}"
                if low is not None
                else f"at most {high:g}"
            )
            raise typer.BadParameter(f"{value} is out of range: expected {what} {bounds}")
        return number

    return parse


# Choices come from the registry: a new modality or kind needs no edit here;
# what people call the kinds (photo, recording) comes from the library.
KIND_ALIASES = scan.KIND_ALIASES
KINDS = registry.kinds()
# The kinds `duplicates` compares: those with pictures.
PICTURE_KINDS = [kind for kind in KINDS if kind in ("image", "video")]
PRECISIONS = ["fp32", "int8"]


DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help=f"Index file. Default: ${config.ENV_DB}, else {config.default_db_path()}",
        show_default=False,
    ),
]
# index and watch: the same files, walked or watched.
IncludeHiddenOption = Annotated[
    bool, typer.Option("--include-hidden", help="Also index hidden files and folders.")
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also say how models ran: ONNX Runtime or torch, conversions, fallbacks.",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        metavar="auto|cpu|cuda|mps",
        help=f"Where models run. Default: ${config.ENV_DEVICE}, else auto",
        show_default=False,
    ),
]


def _model_help(modality: registry.Modality) -> str:
    return (
        f"{modality.model_help} The {modality.noun} model. Default: for a search, the "
        f"index's own; for indexing, ${modality.env}, else the config file's "
        f"{modality.config_key}, else the index's own, else {modality.default_model}"
    )


@dataclass
class ModelChoices:
    """The model options a command was given: a spec by modality name (None:
    not given), and the modalities its --no-X options leave out."""

    specs: dict[str, str | None] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)

    def requests(self) -> dict[str, config.Choice | None]:
        """The models asked for on the command line, as the library takes them."""
        return {
            name: config.Choice(spec, "option") if spec else None
            for name, spec in self.specs.items()
        }


def with_model_options(*, skips: bool = False, modality_filter: bool = False) -> Any:
    """Give a command each registered modality's model option (with `skips`,
    its --no-X option too; with `modality_filter`, --modality); the command
    receives them as `models: ModelChoices` (and `modality: list[str]`)."""

    def decorate(command: Callable[..., Any]) -> _WithModelOptions:
        return _WithModelOptions(command, skips=skips, modality_filter=modality_filter)

    return decorate


class _WithModelOptions:
    """A command with the registry's options added to its own. typer reads a
    command's options from its signature each time the app runs, and the
    signature is made then, from the modalities registered at that time: a
    modality registered later (a plugin, a test) has its options too."""

    def __init__(self, command: Callable[..., Any], *, skips: bool, modality_filter: bool) -> None:
        functools.update_wrapper(
            self, command, assigned=("__module__", "__name__", "__qualname__", "__doc__")
        )
        self.command = command
        self.skips = skips
        self.modality_filter = modality_filter
        own = inspect.signature(command, eval_str=True)
        # What the decorator adds is the command's business only as values.
        self.own = [p for name, p in own.parameters.items() if name not in ("models", "modality")]
        self.returns = own.return_annotation

    def _skippable(self) -> list[registry.Modality]:
        return [m for m in registry.modalities() if self.skips and m.skip_option]

    def _added(self) -> list[inspect.Parameter]:
        def keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
            return inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )

        added = [
            keyword(
                m.argument,
                None,
                Annotated[
                    str | None,
                    typer.Option(m.option, metavar="SPEC", help=_model_help(m), show_default=False),
                ],
            )
            for m in registry.modalities()
        ]
        added += [
            keyword(
                _skip_argument(str(m.skip_option)),
                False,
                Annotated[bool, typer.Option(str(m.skip_option), help=m.skip_help)],
            )
            for m in self._skippable()
        ]
        if self.modality_filter:
            names = registry.names()
            added.append(
                keyword(
                    "modality",
                    None,
                    Annotated[
                        list[str] | None,
                        typer.Option(
                            "--modality",
                            "-m",
                            metavar="|".join(names),
                            parser=choice_parser(names),
                            autocompletion=registry.names,
                            help="Only match by what is seen, heard, said or written (repeatable).",
                        ),
                    ],
                )
            )
        return added

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.Signature([*self.own, *self._added()], return_annotation=self.returns)

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        annotations = {p.name: p.annotation for p in [*self.own, *self._added()]}
        return {**annotations, "return": self.returns}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        chosen = ModelChoices(
            {m.name: kwargs.pop(m.argument, None) for m in registry.modalities()},
            {m.name for m in self._skippable() if kwargs.pop(_skip_argument(str(m.skip_option)))},
        )
        return self.command(*args, models=chosen, **kwargs)


def print_notes(models: Any) -> None:
    from mediafind.output import stderr_line

    for model in models:
        for note in model.notes:
            stderr_line(f"mediafind: note: {note}")


@dataclass
class SearchModels:
    """What chooses a search's models (search, similar and serve alike)."""

    db: Path | None = None
    choices: ModelChoices = field(default_factory=ModelChoices)
    device: str | None = None
    verbose: bool = False

    def for_searching(self, store: Any) -> dict[str, Any]:
        """The index's models for a search: as it was built, unless an option
        names another. In a service (`keep_models_warm`), the same model is
        the same object from one search to the next, its weights loaded."""
        models = registry.models_for_index(
            store,
            self.choices.requests(),
            device=config.resolve_device(self.device),
            searching=True,
        )
        if _warm is None:
            return models
        return {
            name: _warm.setdefault((name, model.key, str(getattr(model, "device", ""))), model)
            for name, model in models.items()
        }


# Models kept loaded between the searches a service answers; None: a
# command's own process, which searches once.
_warm: dict[tuple[str, str, str], Any] | None = None


def keep_models_warm() -> None:
    global _warm
    _warm = {}
