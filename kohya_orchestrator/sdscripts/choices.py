"""sd-scripts' named choices: schedulers, optimizers, samplers. One list each, used everywhere.

Settings (`lr_scheduler`, `sample_sampler`) and the lint check against these same lists, so a
value one accepts the other cannot refuse. From sd-scripts' code: get_scheduler_fix
(library/train_util.py; library/optimizer.py at 6721028c) and get_optimizer; the samplers
are the `--sample_sampler` choices of every shipped commit (a test compares them).
"""

from __future__ import annotations

import difflib

# String options sd-scripts tests by truth (`if not args.resume` in train_util /
# library/args.py), so a `false` in a file reads as unset.
TESTED_BY_TRUTH: frozenset[str] = frozenset({"resume"})
# String options sd-scripts tests with `is not None` and then opens: "" crashes there.
EMPTY_CRASHES: dict[str, str] = {
    "pretrained_model_name_or_path": "loading the model",
    "vae": "loading the VAE",
    "network_weights": "loading the network weights",
    "dataset_config": "reading the dataset config (file not found)",
}
# transformers' SchedulerType (sd-scripts' pins) plus diffusers' piecewise_constant.
SCHEDULERS: tuple[str, ...] = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "piecewise_constant",
)
# train_util.get_optimizer's names (compared lower-case), then torch.optim's own classes.
OPTIMIZERS: tuple[str, ...] = (
    "AdamW",
    "AdamW8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "PagedAdamW32bit",
    "Lion",
    "Lion8bit",
    "PagedLion8bit",
    "SGDNesterov",
    "SGDNesterov8bit",
    "DAdaptation",
    "DAdaptAdamPreprint",
    "DAdaptAdaGrad",
    "DAdaptAdam",
    "DAdaptAdan",
    "DAdaptAdanIP",
    "DAdaptLion",
    "DAdaptSGD",
    "Prodigy",
    "AdaFactor",
    "RAdamScheduleFree",
    "AdamWScheduleFree",
    "SGDScheduleFree",
)
TORCH_OPTIMIZERS: tuple[str, ...] = (
    "Adam",
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "ASGD",
    "Rprop",
)
# `adafactor:<initial lr>`: transformers' AdafactorSchedule, only with optimizer_type
# "AdaFactor"; a bare "adafactor" stops sd-scripts with an IndexError (name.split(":")[1]).
ADAFACTOR_SCHEDULER = "adafactor:"
# `--sample_sampler` choices (the same at every shipped commit).
SAMPLERS: tuple[str, ...] = (
    "ddim",
    "pndm",
    "lms",
    "euler",
    "euler_a",
    "heun",
    "dpm_2",
    "dpm_2_a",
    "dpmsolver",
    "dpmsolver++",
    "dpmsingle",
    "k_lms",
    "k_euler",
    "k_euler_a",
    "k_dpm_2",
    "k_dpm_2_a",
)


def is_scheduler(name: str) -> bool:
    """Whether get_scheduler_fix accepts `name` (a SchedulerType, or adafactor:<number>)."""
    if name in SCHEDULERS:
        return True
    if name.startswith(ADAFACTOR_SCHEDULER):
        try:
            float(name[len(ADAFACTOR_SCHEDULER) :])
        except ValueError:
            return False
        return True
    return False


def scheduler_hint(name: str) -> str:
    """What to write instead of an unknown scheduler."""
    if name.startswith("adafactor"):
        return 'write "adafactor:<initial lr>" (e.g. "adafactor:1e-3"), with optimizer "AdaFactor"'
    close = difflib.get_close_matches(name, SCHEDULERS, n=1)
    return f'did you mean "{close[0]}"?' if close else "use one of: " + ", ".join(SCHEDULERS)


def is_optimizer(name: str) -> bool:
    """Whether get_optimizer knows `name` (case-insensitive; torch.optim's own by name;
    a `module.Class` path is taken on trust)."""
    if "." in name:
        return True
    return name.lower() in {o.lower() for o in OPTIMIZERS} or name in TORCH_OPTIMIZERS


def optimizer_hint(name: str) -> str:
    """What to write instead of an unknown optimizer."""
    names = {o.lower(): o for o in OPTIMIZERS}
    close = difflib.get_close_matches(name.lower(), sorted(names), n=1)
    return f'did you mean "{names[close[0]]}"?' if close else 'use "AdamW" or a module.Class path'
