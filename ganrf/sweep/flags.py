"""The flags of a sweep's command line that define its experiment, and their checks.

A sweep records its defining flags (normalised: ``--smoke-test`` is ``--preset smoke``, ``1, 5``
is ``1,5``) in ``sweep.json`` when it starts; ``--resume`` accepts the same command line and
refuses only flags whose values differ from the recorded ones.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ganrf.config import parse_set


class SweepError(ValueError):
    """Bad input to a sweep: one sentence, exit status 2, nothing on disk touched."""


def experiment_name(text: str) -> str:
    """``--name``: one folder inside the storage path, never a path out of it."""
    ok = text and not text.startswith(".") and all(c.isalnum() or c in "._-" for c in text)
    if not ok:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an experiment name: use letters, digits, '.', '_' and '-' (no '/', "
            "not starting with '.')"
        )
    return text


def names(text: str) -> tuple[str, ...]:
    """``--experiments onelayer, heads``: comma-separated names, stripped; empty items dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def ints(text: str, flag: str) -> tuple[int, ...]:
    """``--rfs 1,3,5``: whole numbers, commas between them; an empty item is a typo, refused."""
    items = [v.strip() for v in text.split(",")]
    if not any(items):
        raise SweepError(f"{flag} is empty")
    try:
        return tuple(int(v) for v in items)
    except ValueError:
        raise SweepError(
            f"{flag} takes comma-separated whole numbers (e.g. 1,3,5), got {text!r}"
        ) from None


# Flags that define an experiment, recorded in sweep.json when it starts (normalised, see
# defining_flags); --resume continues it as recorded and accepts these only with the recorded
# values. --smoke-test is recorded as --preset smoke.
DEFINING = (
    "preset",
    "experiments",
    "rfs",
    "depths",
    "heads",
    "seeds",
    "norm",
    "family",
    "dropout",
    "loss",
    "epochs",
    "set",
    "data_root",
    "trial_timeout_s",
    "max_concurrent",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_failures",
    "pack",
    "tracker",
)


def defining_flags(args: argparse.Namespace, default: str) -> dict[str, Any]:
    """The defining flags of ``args`` (every one of :data:`DEFINING`), normalised so that
    equal meanings compare equal: ``--smoke-test`` is ``--preset smoke``, no --preset is the
    script's default, lists are split and stripped (``1, 5`` is ``1,5``), --set is a dict
    (a later item wins), --data-root an absolute path; a flag not given is None.

    Raises:
        SweepError: a list flag that is not one.
    """
    flags = {f: _normalise(f, getattr(args, f)) for f in DEFINING}
    flags["preset"] = "smoke" if args.smoke_test else (args.preset or default)
    return flags


def _normalise(flag: str, value: Any) -> Any:
    if value is None:
        return None
    if flag in ("experiments", "heads"):
        return list(names(value))
    if flag in ("rfs", "depths"):
        return list(ints(value, f"--{flag}"))
    if flag == "set":
        try:
            return parse_set(value)
        except ValueError as e:
            raise SweepError(str(e)) from None
    if flag == "data_root":
        return os.path.abspath(value)
    return value


def _shown(flag: str, value: Any) -> str:
    """A normalised flag value as it would be typed, e.g. ``--rfs 1,5``."""
    name = f"--{flag.replace('_', '-')}"
    if value is None:
        return f"no {name}"
    if flag == "set":
        return " ".join(f"--set {k}={v}" for k, v in value.items()) or "no --set"
    if isinstance(value, list):
        return f"{name} {','.join(str(v) for v in value)}"
    return f"{name} {value}"


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the flags ``argv`` gives, defaults or not (argparse applies no
    default to an attribute the namespace already has)."""
    blank = argparse.Namespace(**{a.dest: None for a in parser._actions if a.dest != "help"})
    return {k for k, v in vars(parser.parse_args(argv, blank)).items() if v is not None}


def check_resume_flags(
    args: argparse.Namespace, given: set[str], recorded: dict[str, Any] | None, default: str
) -> str | None:
    """Why the defining flags given with --resume cannot be honoured, or None when they all
    equal the recorded ones (``recorded`` None: a sweep from before flags were recorded)."""
    if "smoke_test" in given:
        given = given | {"preset"}
    asked = [f for f in DEFINING if f in given]
    if not asked:
        return None
    if recorded is None:
        names = ", ".join(f"--{f.replace('_', '-')}" for f in asked)
        return (
            f"this experiment did not record the flags it started with, so --resume continues "
            f"it as it was started; drop {names}"
        )
    now = defining_flags(args, default)
    differ = []
    for f in asked:
        if now[f] == recorded.get(f):
            continue
        said = "--smoke-test" if f == "preset" and args.smoke_test else _shown(f, now[f])
        was = recorded.get(f)
        differ.append(
            f"{said} differs from the recorded {_shown(f, was)}"
            if was is not None
            else f"{said} was not given when the sweep started"
        )
    if not differ:
        return None
    return f"{', '.join(differ)}; drop {'it' if len(differ) == 1 else 'them'} or start a new --name"
