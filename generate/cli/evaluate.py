"""`generate eval`: a model's writing judged as a reader of its kind would, beside its corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click


@click.command("eval")
@click.argument("model")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-N", "--num-samples", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Samples to draw and judge (one batch), when no FILES are given.")
@click.option("--seed", type=int, default=1, show_default=True, help="The samples' seed.")
@click.option("--label", default="", help="A labelled model: sample in this style, and judge the style's meters too.")
@click.option("--temperature", "-t", type=float, default=None, help="Sampling temperature [default: the model's own].")
@click.option("--form", default="", help="Chinese verse: sample this form (5x4, 7x4, 5x8, 7x8, ...).")
@click.option("--regulated", is_flag=True, help="Chinese verse: sample with --regulated (tones and rhymes by construction).")
@click.option("--lines", type=click.IntRange(1, 200), default=None, help="Verse: sample poems of N lines.")
@click.option("--rhyme", default=None, help="English verse: the rhyme scheme the lines are judged by (AABB, ABAB, ...).")
@click.option("--meter", type=click.Choice(["trimeter", "tetrameter", "pentameter", "hexameter"]), default=None,
              help="English verse: the syllables a line should have (pentameter: 10, within one).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every measure, for the samples and the corpus.")
def evaluate(model: str, files: tuple[Path, ...], num_samples: int, seed: int, label: str,
             temperature: float | None, form: str, regulated: bool, lines: int | None, rhyme: str | None,
             meter: str | None, as_json: bool) -> None:
    """Judge MODEL's writing (fresh samples, or FILES of it) beside its corpus.

    Music: whether headers name the corpus's meters, bars that add up,
    endings on the tonic; for chorales, parallel fifths and octaves, spacing,
    crossings and ranges; and Yang & Lerch's comparison of pitch and rhythm
    distributions with the corpus's (overlap area, 1 is best; KL, 0 is best).
    Chinese verse: regulated shape, rhyme and tones by the Pingshui tables,
    and poems with a line copied from the corpus.
    """
    from ..critics.evaluate import evaluate as judge  # NumPy and the model load here, not for --help

    options = {"temperature": temperature} if temperature is not None else {}
    options.update({"form": form} if form else {}, **({"regulated": True} if regulated else {}),
                   **({"lines": lines} if lines else {}))
    if rhyme is not None and not re.fullmatch(r"[A-Za-z]{2,}", rhyme):
        raise click.BadParameter(f"expected letters such as AABB or ABAB, received {rhyme!r}", param_hint="--rhyme")
    judging = {name: value for name, value in (("rhyme", rhyme), ("meter", meter)) if value}
    result = judge(model, list(files), num_samples, seed, label, judging, **options)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    corpus = f"its corpus ({result.corpus_source}, {result.corpus.count:,} pieces)" if result.corpus else "its corpus (not at hand)"
    click.echo(f"{result.model}: {result.source}{f' with --label {label}' if label else ''}, beside {corpus}")
    rows = [("measure", "samples", "corpus")] + result.rows()
    width = max(len(row[0]) for row in rows)
    for what, mine, theirs in rows:
        click.echo(f"  {what:<{width}}  {mine:>8}  {theirs:>8}")
    if result.similarity:
        click.echo("distributions beside the corpus's (Yang & Lerch: overlap area, 1 best; KL divergence, 0 best)")
        for name, values in result.similarity.items():
            shown = f"overlap {values['overlap']:.3f}  KL {values['kl']:.3f}" if values else "-"
            click.echo(f"  {name:<{width}}  {shown}")
