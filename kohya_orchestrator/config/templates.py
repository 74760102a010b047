"""Editable Jinja templates: the search path, `templates ls` / `templates cp`, rendering.

Search order (first match wins): an explicit --templates-dir, $KOHYA_ORCH_TEMPLATES, the
project's DEST/templates/, then the packaged ones (kohya_orchestrator/_templates inside a
wheel, the repository's top-level templates/ in a source checkout). Every value reaches a
TOML file through the `toml` filter and a sample-prompt line through the `prompt` filter;
a missing variable is an error (StrictUndefined), never an empty string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.tomlquote import TomlValueError, toml_value
from kohya_orchestrator.errors import TemplateError
from kohya_orchestrator.fsutil import read_regular_bytes

ENV_VAR = "KOHYA_ORCH_TEMPLATES"
TEMPLATE_SUFFIX = ".j2"
LAYER_OPTION = "--templates-dir"
LAYER_ENV = f"${ENV_VAR}"
LAYER_PROJECT = "project"
LAYER_PACKAGED = "packaged"
# sd-scripts' per-line option patterns (train_util.line_to_prompt_dict), also tried on the
# prompt text itself.
_LEADING_OPTION = re.compile(r"^(?:[whdslg] [\d.]|(?:n|ss|cn|ctr|rcfg|fs) .)", re.IGNORECASE)


def packaged_dir() -> Path:
    """The shipped templates: inside the wheel first, else the source checkout's templates/."""
    inside = Path(__file__).resolve().parent.parent / "_templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class TemplateInfo:
    """One template file, the layer it comes from, and whether a higher layer hides it."""

    name: str
    layer: str
    path: Path
    active: bool = True


def search_path(
    dest: Path | None = None, templates_dir: Path | None = None
) -> list[tuple[str, Path]]:
    """(layer, folder) in the order they are searched; explicit folders must exist."""
    layers: list[tuple[str, Path]] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise TemplateError(
                f"Templates folder not found: {templates_dir}",
                "Give an existing folder to --templates-dir.",
            )
        layers.append((LAYER_OPTION, templates_dir))
    env = os.environ.get(ENV_VAR)
    if env:
        env_dir = Path(env).expanduser()
        if not env_dir.is_dir():
            raise TemplateError(
                f"${ENV_VAR} names a folder that does not exist: {env_dir}",
                f"Create it or unset {ENV_VAR}.",
            )
        layers.append((LAYER_ENV, env_dir))
    if dest is not None and (dest / "templates").is_dir():
        layers.append((LAYER_PROJECT, dest / "templates"))
    layers.append((LAYER_PACKAGED, packaged_dir()))
    return layers


def is_template_name(name: str) -> bool:
    """A template is a plain `*.j2` file name: never a path, a hidden file or a temp."""
    return (
        name.endswith(TEMPLATE_SUFFIX)
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
    )


def _template_files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if is_template_name(p.name) and p.is_file())


def list_templates(
    dest: Path | None = None, templates_dir: Path | None = None
) -> list[TemplateInfo]:
    """Every template in every layer; `active` marks the one a render would use."""
    seen: set[str] = set()
    found: list[TemplateInfo] = []
    for layer, folder in search_path(dest, templates_dir):
        for path in _template_files(folder):
            found.append(TemplateInfo(path.name, layer, path, path.name not in seen))
            seen.add(path.name)
    return found


def find_template(
    name: str, dest: Path | None = None, templates_dir: Path | None = None
) -> TemplateInfo:
    """The template `name` would render from; TemplateError naming the folders searched."""
    if not is_template_name(name):
        raise TemplateError(
            f"{name!r} is not a template name: a template is a file name ending in "
            f"{TEMPLATE_SUFFIX} from the template folders, never a path.",
            "See `kohya-orch templates ls` for the names.",
        )
    layers = search_path(dest, templates_dir)
    for layer, folder in layers:
        path = folder / name
        if path.is_file():
            return TemplateInfo(name, layer, path)
    names = sorted({t.name for t in list_templates(dest, templates_dir)})
    searched = ", ".join(str(folder) for _, folder in layers)
    raise TemplateError(
        f"Template {name!r} not found (searched {searched}).",
        f"Available: {', '.join(names) or 'none'}; see `kohya-orch templates ls`.",
    )


def copy_target(dest: Path, name: str) -> Path:
    """Where `templates cp NAME DEST` writes: a project's templates/, a folder, or a file."""
    from kohya_orchestrator.layout import SETTINGS_FILE

    if (dest / SETTINGS_FILE).is_file():
        return dest / "templates" / name
    if dest.is_dir():
        return dest / name
    return dest


def copy_template(
    name: str, dest: Path, *, force: bool = False, templates_dir: Path | None = None
) -> Path:
    """Copy a template out to edit; refuses to overwrite an existing file without force.

    Into a project folder (one with kohya-orch.toml) the copy goes to DEST/templates/,
    where `kohya-orch config DEST` picks it up before the packaged one.
    """
    source = find_template(name, None, templates_dir)
    target = copy_target(dest, name)
    if target.exists() and not force:
        raise _exists(target)
    if target.resolve() == source.path.resolve():
        raise TemplateError(f"{target} is the template itself; nothing to copy.")
    from kohya_orchestrator.fsutil import ABSENT, FileChangedError, atomic_write_bytes
    from kohya_orchestrator.layout import SETTINGS_FILE
    from kohya_orchestrator.locking import folder_lock

    project = (dest / SETTINGS_FILE).is_file()
    if not project:
        target.parent.mkdir(parents=True, exist_ok=True)  # a new folder: nobody else's yet
    with folder_lock(dest if project else target.parent, "templates cp"):
        target.parent.mkdir(exist_ok=True)
        if target.exists() and not force:
            raise _exists(target)
        try:
            atomic_write_bytes(
                target,
                read_regular_bytes(source.path),
                mode=source.path.stat().st_mode & 0o7777,
                expect=None if force else ABSENT,
            )
        except FileChangedError:
            raise _exists(target) from None
    return target


def _exists(target: Path) -> TemplateError:
    return TemplateError(
        f"{target} already exists; not overwritten.",
        "Use --force to replace it with a fresh copy.",
    )


# -- rendering ---------------------------------------------------------------------------


class TrackingDict(dict[str, Any]):
    """A dict that remembers which keys a template read (to know what it rendered)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if key not in self.read:
            self.read.append(key)
        return value


def toml_filter(value: Any) -> str:
    """Jinja filter `toml`: the TOML literal of a value (TemplateError if it has none)."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    try:
        return toml_value(value)
    except TomlValueError as exc:
        raise TemplateError(f"Cannot write this value into TOML: {exc}") from None


def prompt_filter(value: Any) -> str:
    """Jinja filter `prompt`: text for one sd-scripts sample-prompt line, checked.

    sd-scripts splits each line on " --" into the prompt and its options and reads one line
    per prompt, so a newline or " --" inside a value would add prompts or options.
    """
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TemplateError(f"Cannot write {value!r} into a sample prompt line.")
    text = str(value)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        why = "it contains a line break or control character"
    elif " --" in text or text.startswith("--"):
        why = 'it contains " --", which starts an option'
    elif _LEADING_OPTION.match(text):
        # sd-scripts also matches its option patterns against the prompt itself.
        why = "it starts like an sd-scripts option (e.g. `d 5` would set the seed)"
    elif text.startswith("#"):
        # At the start of a line (the trigger is), sd-scripts skips it as a comment: no
        # sample images at all, without a word.
        why = "it starts with '#', and sd-scripts skips prompt lines starting with '#'"
    else:
        return text
    raise TemplateError(
        f"{text!r} cannot go into a sample prompt line: {why}",
        "Change the trigger (or the value) or edit your copy of sample_prompts.txt.j2.",
    )


def make_environment(search: list[tuple[str, Path]]) -> Any:
    """The Jinja environment over the search path (StrictUndefined, no autoescape)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder) for _, folder in search]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["toml"] = toml_filter
    env.filters["prompt"] = prompt_filter
    return env


@dataclass(frozen=True)
class Rendered:
    """A rendered template: its text and where the template came from."""

    text: str
    template: TemplateInfo


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    dest: Path | None = None,
    templates_dir: Path | None = None,
) -> Rendered:
    """Render template `name`; any Jinja failure becomes a TemplateError naming the file."""
    import jinja2

    info = find_template(name, dest, templates_dir)
    env = make_environment(search_path(dest, templates_dir))
    try:
        text = env.get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{info.path}: {exc.message}",
            "The template uses a variable that is not provided; see the shipped "
            "template for the available ones (`kohya-orch templates cp`).",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{exc.filename or info.path}, line {exc.lineno}: {exc.message}",
            "Fix the Jinja syntax in that template.",
        ) from None
    except TemplateError as exc:
        raise TemplateError(f"{info.path}: {exc.message}", exc.hint) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{info.path}: {exc}") from None
    return Rendered(text, info)
