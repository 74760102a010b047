"""The kohya folder layout of one training project (DEST): where every file lives.

DEST/
  kohya-orch.toml          the project's settings (written once by `prepare`, then the user's)
  config.toml              the rendered sd-scripts training config
  sample_prompts.txt       rendered sample prompts (when sampling is on)
  templates/               the user's own template copies (optional, `templates cp`)
  img/<repeats>_<name>/    links to the training images and their captions
  reg/<repeats>_<class>/   regularisation images (only when given)
  model/                   the LoRA files sd-scripts writes (and *-state folders)
  log/                     TensorBoard logs and train-<timestamp>.log
  runs/<timestamp>.json    one record per training run
  compare/grid.png         the epoch x prompt contact sheet
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SETTINGS_FILE = "kohya-orch.toml"
CONFIG_FILE = "config.toml"
SAMPLE_PROMPTS_FILE = "sample_prompts.txt"


@dataclass(frozen=True)
class Layout:
    """Paths of one project folder; computing them touches nothing on disk."""

    dest: Path

    @classmethod
    def at(cls, dest: Path) -> Layout:
        """The layout of DEST as given on a command line: `~` expanded, made absolute."""
        return cls(Path(dest).expanduser().absolute())

    @property
    def settings_file(self) -> Path:
        return self.dest / SETTINGS_FILE

    @property
    def config_file(self) -> Path:
        return self.dest / CONFIG_FILE

    @property
    def sample_prompts_file(self) -> Path:
        return self.dest / SAMPLE_PROMPTS_FILE

    @property
    def templates_dir(self) -> Path:
        return self.dest / "templates"

    @property
    def img_dir(self) -> Path:
        return self.dest / "img"

    def concept_dir(self, repeats: int, name: str) -> Path:
        """`img/<repeats>_<name>`: sd-scripts reads the repeat count from the folder name."""
        return self.img_dir / f"{repeats}_{name}"

    @property
    def reg_dir(self) -> Path:
        return self.dest / "reg"

    def reg_concept_dir(self, repeats: int, class_tokens: str) -> Path:
        return self.reg_dir / f"{repeats}_{class_tokens}"

    @property
    def model_dir(self) -> Path:
        return self.dest / "model"

    @property
    def log_dir(self) -> Path:
        return self.dest / "log"

    @property
    def runs_dir(self) -> Path:
        return self.dest / "runs"

    @property
    def sample_dir(self) -> Path:
        """Where sd-scripts writes sample images: `<output_dir>/sample`."""
        return self.model_dir / "sample"

    @property
    def compare_dir(self) -> Path:
        return self.dest / "compare"
