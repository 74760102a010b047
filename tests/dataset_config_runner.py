"""Run inside an sd-scripts checkout's own Python (opt-in tests): build the dataset group of a
dataset config with the checkout's own config_util, and print its batches per epoch.

Usage: python dataset_config_runner.py SD_SCRIPTS_DIR DATASET_CONFIG
Prints one JSON line: {"batches": len(dataset group), "datasets": [len(each dataset)]}.
Only sd-scripts' code decides the numbers; the tokenizer is a stand-in (no model is loaded:
the batch count does not depend on it).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import types

root, config = sys.argv[1:3]
sys.path.insert(0, root)
os.chdir(root)

import train_network  # noqa: E402
from library import config_util  # noqa: E402

parser = train_network.setup_parser()
args = parser.parse_args(["--dataset_config", config])
sanitizer_params = inspect.signature(config_util.ConfigSanitizer.__init__).parameters
flags = [True, True, False, True][: len(sanitizer_params) - 1]
generator = config_util.BlueprintGenerator(config_util.ConfigSanitizer(*flags))
user_config = config_util.load_user_config(config)
runtime: dict[str, object] = {}
# Older commits take the tokenizer as a runtime parameter of the dataset blueprints.
if "tokenizer" in getattr(config_util.BaseDatasetParams, "__dataclass_fields__", {}):
    runtime["tokenizer"] = types.SimpleNamespace(model_max_length=77)
blueprint = generator.generate(user_config, args, **runtime)
group = config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)
if isinstance(group, tuple):  # (train, validation) at newer commits
    group = group[0]
if hasattr(group, "make_buckets"):
    group.make_buckets()
else:
    for dataset in group.datasets:
        if not getattr(dataset, "buckets_indices", None):
            dataset.make_buckets()
print(json.dumps({"batches": len(group), "datasets": [len(d) for d in group.datasets]}))
