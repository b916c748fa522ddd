"""What several subcommands share: parent parsers for the common options, and loading the model."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Parents:
    """Parent parsers (``add_parser(..., parents=[...])``) for options several commands take alike."""

    model: argparse.ArgumentParser  # --model, --device, --dtype, --allow-download
    quiet: argparse.ArgumentParser  # --quiet
    mask: argparse.ArgumentParser  # --k, --t-hat: ConceptPrune's mask parameters
    concept: argparse.ArgumentParser  # --concept, --judge, --steps, --guidance: what is erased and how it is judged


def parents() -> Parents:
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--model",
        default="toy",
        help="'toy' (the embedded toy world, default), a folder saved with save_pretrained, or a cached hub id",
    )
    model.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    model.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="weights dtype (float16 on GPU for real SD)",
    )
    model.add_argument(
        "--allow-download", action="store_true", help="let diffusers fetch weights from a hub (off: no downloads at run time)"
    )
    model.add_argument("--size", type=int, default=None, help="image side in pixels of every generation (default: the "
                       "model's own: 1024 for FLUX.1 and SD3.5, 512 for SD1.5)")  # fmt: skip
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bars")
    mask = argparse.ArgumentParser(add_help=False)
    mask.add_argument("--k", type=float, default=2.0, help="percent of each weight row (ConceptPrune's k; the paper: 1-5)")
    mask.add_argument("--t-hat", type=int, default=10, help="aggregate the first t-hat denoiser calls (the paper: 9-20)")
    concept = argparse.ArgumentParser(add_help=False)
    concept.add_argument(
        "--concept",
        required=True,
        help="a toy concept (striped, dotted, checkered, circle, square, triangle, cross), a paper set (nudity, van_gogh, "
        "monet, church, parachute, ...: `workbench concepts`) or a concept file SPEC.toml (docs/concepts.md); erase takes "
        "several at once, comma-separated (striped,dotted), each judged on its own",
    )
    from ..evaluation.judges import kinds

    judges = f"override the concept's judge, KIND or KIND:ARG ({kinds()}; docs/concepts.md)".replace("%", "%%")
    concept.add_argument("--judge", default=None, help=judges)
    concept.add_argument(
        "--steps", type=int, default=None, help="denoising steps of every generation (default: the model's own; toy 25, SD 50)"
    )
    concept.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance (default: the model's own; toy 1.5, SD 7.5)"
    )
    return Parents(model, quiet, mask, concept)


def device_of(args) -> str:
    """--device, else this process's GPU (under torchrun / accelerate: LOCAL_RANK's), else the CPU."""
    import torch

    return args.device or (f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")


def dtype_of(args):
    """--dtype as a torch dtype."""
    import torch

    return getattr(torch, args.dtype)


def load(args):
    from ..models import load_pipeline

    if getattr(args, "quiet", False):  # diffusers' and transformers' loading bars too
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

    from ..models.loading import set_image_size

    pipe = load_pipeline(args.model, device=device_of(args), dtype=dtype_of(args), allow_download=args.allow_download)
    return set_image_size(pipe, args.size) if getattr(args, "size", None) else pipe


def add_options(parser: argparse.ArgumentParser, specs: list) -> None:
    """One ``--flag`` per field of the specs' options dataclasses (their union), with the field's
    help and choices, the names of the specs that take it and their defaults. Flags default to
    absent, so only the options a user gives reach ``given_options``. A tuple field takes its
    values comma-separated."""
    import dataclasses
    import typing

    seen: dict[str, dict[str, object]] = {}
    first: dict[str, tuple] = {}
    for spec in specs:
        hints = typing.get_type_hints(spec.options)
        for f in dataclasses.fields(spec.options):
            seen.setdefault(f.name, {})[spec.name] = f.default
            first.setdefault(f.name, (f, hints[f.name]))
    parser.set_defaults(_option_names=tuple(first))
    for name, (f, hint) in first.items():
        flag = "--" + name.replace("_", "-")
        help_ = f.metadata.get("help", "") + _takes(seen[name])
        if hint is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
            continue
        parser.add_argument(flag, dest=name, type=_parser_of(hint), default=argparse.SUPPRESS,
                            choices=f.metadata.get("choices"), help=help_.replace("%", "%%"))  # fmt: skip


def _takes(defaults: dict[str, object]) -> str:
    """' (a, b; default X)', or each one's default where they differ."""
    show = {n: ",".join(map(str, d)) if isinstance(d, tuple) else d for n, d in defaults.items()}
    if len(set(map(repr, show.values()))) == 1:
        return f" ({', '.join(show)}; default {next(iter(show.values()))})"
    return " (defaults: " + ", ".join(f"{n} {d}" for n, d in show.items()) + ")"


def _parser_of(hint):
    """argparse's ``type`` for an options field's type hint: its non-None type, or for ``tuple[T, ...]``
    comma-separated values of T."""
    import typing

    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]

        def values(text: str) -> tuple:
            return tuple(item(v) for v in text.split(",") if v.strip())

        values.__name__ = f"comma-separated {item.__name__}"
        return values
    return kind


def given_options(args, spec) -> dict:
    """The options of ``spec`` given on the command line; a given option that ``spec`` does not take
    is refused, with the ones it takes."""
    import dataclasses

    from .. import registry

    mine = {f.name for f in dataclasses.fields(spec.options)}
    every = set(getattr(args, "_option_names", ()))
    given = {n: getattr(args, n) for n in every if hasattr(args, n)}
    wrong = sorted(set(given) - mine)
    if wrong:
        flags = ", ".join("--" + n.replace("_", "-") for n in wrong)
        raise registry.UnknownName(f"{spec.name} takes no {flags}: its options are "
                                    f"{', '.join('--' + n.replace('_', '-') for n in sorted(mine)) or 'none'}")  # fmt: skip
    return given
