"""Which LoRA files a run writes, as sd-scripts names them (train_network.py, train_util.py).

sd-scripts saves `<name>-<epoch:06d>.safetensors` after epoch e when e % save_every == 0 and
e < the total number of epochs; the last epoch is always saved as `<name>.safetensors`, with
no number. A list that names `<name>-0000<N>` for the last epoch points at a file that never
exists.
"""

from __future__ import annotations

import re

EPOCH_FILE = "{}-{:06d}"
EPOCH_STATE = "{}-{:06d}-state"
LAST_STATE = "{}-state"


def saved_epochs(epochs: int, save_every: int | None) -> list[int]:
    """The epoch numbers that get a LoRA file, in order (the last one is the final file)."""
    if epochs < 1:
        return []
    every = save_every or 0
    numbered = [e for e in range(1, epochs) if every > 0 and e % every == 0]
    return [*numbered, epochs]


def lora_stem(name: str, epoch: int, epochs: int) -> str:
    """The file stem sd-scripts uses for `epoch` of a run of `epochs` epochs."""
    return name if epoch >= epochs else EPOCH_FILE.format(name, epoch)


def planned_lora_stems(name: str, epochs: int, save_every: int | None) -> list[str]:
    """Stems of every LoRA file the run will write, the final unnumbered one last."""
    return [lora_stem(name, e, epochs) for e in saved_epochs(epochs, save_every)]


def epoch_of_stem(name: str, stem: str) -> int | None:
    """The epoch number in `<name>-000003` (3); None for the final `<name>` or a foreign stem."""
    match = re.fullmatch(re.escape(name) + r"-(\d{6})", stem)
    return int(match.group(1)) if match else None
