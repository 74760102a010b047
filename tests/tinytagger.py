"""A tiny WD14-style ONNX tagger made in the test with the `onnx` package, and a stand-in
for sd-scripts' `finetune/tag_images_by_wd14_tagger.py` that runs it as the real script does.

The model takes `[N, 448, 448, 3]` float32 BGR 0-255 (the real script's input) and returns
`[N, K]` probabilities in the order of `selected_tags.csv` (columns tag_id,name,category,
count; 4 rating rows first): the mean of each colour channel through a fixed map and a
sigmoid, so a red image gets `red_theme`, a green one `green_theme` and the character
`hero_(tiny)`, and every image `solo`. Run as a script, this file is the stand-in: it
parses the tagger's options, loads the model with onnxruntime, pads each image to a white
square, resizes it to 448, and writes `<stem><caption_extension>` for each image, with
the real script's tag rules (thresholds, --remove_underscore, --character_tags_first,
--undesired_tags).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

TAGS = [
    ("general", 9), ("sensitive", 9), ("questionable", 9), ("explicit", 9),
    ("solo", 0), ("red_theme", 0), ("green_theme", 0), ("blue_theme", 0), ("hero_(tiny)", 4),
]  # fmt: skip
REPO = "SmilingWolf/wd-vit-tagger-v3"


def build_model(folder: Path) -> Path:
    """model.onnx and selected_tags.csv in `folder` (the script's --model_dir/<repo> layout)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    k = len(TAGS)
    weight = np.zeros((3, k), dtype=np.float32)
    bias = np.full((k,), -10.0, dtype=np.float32)
    bias[0] = 10.0  # rating: general
    bias[4] = 10.0  # solo
    # BGR channel means / 255 -> blue_theme, green_theme, red_theme; green is also the hero.
    for channel, tag in ((0, 7), (1, 6), (2, 5), (1, 8)):
        weight[channel, tag] = 20.0 / 255.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["mean", "W"], ["logits"]),
            helper.make_node("Add", ["logits", "B"], ["biased"]),
            helper.make_node("Sigmoid", ["biased"], ["output"]),
        ],
        "tiny_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 448, 448, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", k])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    with open(folder / "selected_tags.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category) in enumerate(TAGS):
            writer.writerow([i, name, category, 100])
    return folder


def main(argv: list[str]) -> int:
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    p = argparse.ArgumentParser()
    p.add_argument("train_data_dir")
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--repo_id", default="SmilingWolf/wd-v1-4-convnext-tagger-v2")
    p.add_argument("--model_dir", default="wd14_tagger_model")
    p.add_argument("--caption_extension", default=".txt")
    p.add_argument("--thresh", type=float, default=0.35)
    p.add_argument("--general_threshold", type=float)
    p.add_argument("--character_threshold", type=float)
    p.add_argument("--undesired_tags", default="")
    p.add_argument("--remove_underscore", action="store_true")
    p.add_argument("--character_tags_first", action="store_true")
    p.add_argument("--batch_size", type=int, default=1)
    args = p.parse_args(argv)
    where = Path(args.model_dir) / args.repo_id.replace("/", "_")
    if not (where / "model.onnx").is_file():
        print(f"cannot download {args.repo_id}: offline stand-in", file=sys.stderr)
        return 1
    with open(where / "selected_tags.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    session = ort.InferenceSession(str(where / "model.onnx"), providers=["CPUExecutionProvider"])
    undesired = {t.strip() for t in args.undesired_tags.split(",") if t.strip()}
    general = args.general_threshold or args.thresh
    character = args.character_threshold or args.thresh
    images = sorted(
        p for p in Path(args.train_data_dir).iterdir()
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp")
    )  # fmt: skip
    for path in images:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        arr = np.asarray(square.resize((448, 448)), dtype=np.float32)[:, :, ::-1]
        probs = session.run(None, {"input": arr[None].copy()})[0][0]
        found_general, found_character = [], []
        for row, prob in zip(rows, probs, strict=True):
            name, category = row["name"], row["category"]
            if args.remove_underscore and len(name) > 3:
                name = name.replace("_", " ")
            if name in undesired:
                continue
            if category == "0" and prob >= general:
                found_general.append(name)
            elif category == "4" and prob >= character:
                found_character.append(name)
        tags = (
            found_character + found_general
            if args.character_tags_first
            else found_general + found_character
        )
        (path.parent / f"{path.stem}{args.caption_extension}").write_text(
            ", ".join(tags), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
