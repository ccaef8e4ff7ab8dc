"""The layer-spec grammar every design family shares (no torch).

A spec string is comma-separated layer tokens, each family reading its own (``conv5s2`` and
``maxpool2`` in :func:`ganrf.design.rf.parse_specs`, ``res3s2`` in
:meth:`ganrf.design.resnet.ResidualDesign.from_spec`), with an optional last token naming the
head (``dense`` or ``image``, ``patch``); channels are comma-separated counts, one per layer, as
``d.channels`` holds them. What can be wrong with a spec is said here, once, in the same words
for every family.
"""

from __future__ import annotations

HEAD_TOKENS = {"dense": "image", "image": "image", "patch": "patch"}
EXAMPLES = "e.g. conv5s2,conv5s2 or res3s2,res3"


class SpecError(ValueError):
    """A spec string or channel list that cannot be read: one sentence, the same for every
    family (each family raises it as its own error type)."""


def split_spec(text: str) -> tuple[list[str], str | None]:
    """The layer tokens of ``text`` (stripped, lower case) and the head its last token names
    (None when it names none).

    Raises:
        SpecError: no layers at all, or an empty one (``"conv5,,conv5"``).
    """
    tokens = [t.strip().lower() for t in text.split(",")]
    if not any(tokens):
        raise SpecError(f"no layers in {text!r}; give comma-separated layers, {EXAMPLES}")
    if "" in tokens:  # as the sweep's list flags refuse "1,,5"
        empty = tokens.index("") + 1
        raise SpecError(f"layer {empty} of {text!r} is empty; remove the extra comma")
    head = HEAD_TOKENS[tokens.pop()] if tokens[-1] in HEAD_TOKENS else None
    return tokens, head


def unreadable(index: int, token: str, grammar: str) -> SpecError:
    """The error for layer ``index`` (1-based), a ``token`` the family's ``grammar`` (its help
    sentence) does not read."""
    return SpecError(f"cannot read layer {index} {token!r}; {grammar}")


def layer_channels(
    channels: tuple[int, ...] | str | None, layers: int, text: str
) -> tuple[int, ...] | None:
    """``channels`` for the ``layers`` layers of the spec ``text``: a tuple, or comma-separated
    counts (``"64,128"``); None stays None (the family's default).

    Raises:
        SpecError: a count that is not a whole number, or not one count per layer.
    """
    if isinstance(channels, str):
        try:
            channels = tuple(int(c) for c in channels.split(",") if c.strip())
        except ValueError:
            raise SpecError(
                f"channels {channels!r} must be comma-separated whole numbers, one per layer"
            ) from None
    if channels is not None and len(channels) != layers:
        raise SpecError(
            f"{len(channels)} channel counts for {layers} layers in {text!r}; give one per layer"
        )
    return channels
