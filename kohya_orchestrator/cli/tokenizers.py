"""`kohya-orch tokenizers build DIR`: the CLIP tokenizer folders sd-scripts loads, offline."""

from __future__ import annotations

from pathlib import Path

import click

from kohya_orchestrator.cli.common import handle_errors, verbose_option


@click.group("tokenizers")
def tokenizers_group() -> None:
    """The CLIP tokenizers sd-scripts needs, for machines without network.

    \b
    Examples:
      kohya-orch tokenizers build ~/tokenizers
    """


@tokenizers_group.command("build")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An open_clip_torch wheel, or its bpe_simple_vocab_16e6.txt.gz (default: pip "
    "download it).",
)
@click.option("--no-check", is_flag=True, help="Skip tokenizing a test sentence with transformers.")
@verbose_option
@handle_errors
def build_command(out: Path, source: Path | None, no_check: bool, verbose: bool) -> None:
    """Build the two CLIP tokenizer folders into OUT, from OpenAI's BPE vocabulary.

    Then train with `--set sd_scripts.tokenizer_cache_dir=OUT` (and HF_HUB_OFFLINE=1): sd-scripts
    loads the tokenizers from there instead of downloading them.

    \b
    Examples:
      kohya-orch tokenizers build ~/tokenizers
      kohya-orch tokenizers build ~/tokenizers --source open_clip_torch-3.3.0-py3-none-any.whl
    """
    from kohya_orchestrator.sdscripts.tokenizers import FOLDERS, build_tokenizers

    checked = build_tokenizers(out, source, check_ids=not no_check)
    click.echo(f"Wrote {', '.join(FOLDERS)} in {out} ({checked}).")
    click.echo(f"Train with: --set sd_scripts.tokenizer_cache_dir={out.expanduser().absolute()}")


COMMANDS: list[click.Command] = [tokenizers_group]
