"""``aneurysm demo`` and ``aneurysm config``: the main job on built-in synthetic data, and the
configuration a run would use."""

from __future__ import annotations

import click
import yaml
from rich.console import Console

from ..config import config_to_dict, load_config

console = Console(stderr=False)


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--patients", default=160, show_default=True)
@click.option("--test", "test", default=60, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--no-pretrain", is_flag=True, help="Fine-tune from scratch (no external data).")
@click.option("--force", is_flag=True, help="Replace an earlier demo in OUT.")
def demo_cmd(out, patients, test, seed, config_path, epochs, no_pretrain, force) -> None:
    """Run the main job end to end on built-in synthetic data."""
    from ..workflows.demo import run_demo
    from .render import print_demo, print_source_scores

    config = load_config(config_path, {"train": {"epochs": epochs}})
    kwargs = {"external": None} if no_pretrain else {}
    result = run_demo(out, patients=patients, test=test, seed=seed, config=config, force=force,
                      log=console.print, **kwargs)
    if result.pretrain_scores:
        print_source_scores(console, result.pretrain_scores, 0)
    print_demo(console, result)


@click.command("config")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
def config_cmd(config_path) -> None:
    """Print the resolved configuration (defaults + YAML) as YAML."""
    click.echo(yaml.safe_dump(config_to_dict(load_config(config_path)), sort_keys=False))
