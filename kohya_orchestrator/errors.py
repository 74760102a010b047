"""Typed errors: each carries what went wrong and a hint saying what to do next.

Core modules raise these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence


class OrchError(Exception):
    """Base of every error the user should see as a message, not a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text shown to the user: the message, then the hint on its own line."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ProblemsError(OrchError):
    """Several problems found at once (validation collects them all before failing)."""

    def __init__(self, message: str, problems: Sequence[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problems = list(problems)

    def render(self) -> str:
        lines = [self.message]
        lines.extend(f"  - {p}" for p in self.problems)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class InputError(OrchError):
    """A bad argument value (a prefix, trigger, path) given on the command line."""


class DatasetError(OrchError):
    """The image folder cannot be used as asked (missing, empty, unsafe)."""


class PlanConflictError(ProblemsError):
    """A dataset change was planned but would collide or lose a file; nothing was changed."""


class JournalError(OrchError):
    """A rename journal is missing, unreadable, or does not match the folder."""


class ImageFormatError(OrchError):
    """An image file could not be read or edited (corrupt, truncated, unsupported)."""


class CaptionError(OrchError):
    """A caption is not acceptable (control characters, too long for the format)."""


class SettingsError(ProblemsError):
    """The project's settings file or a --set override is wrong."""


class TemplateError(OrchError):
    """A template is missing, fails to render, or renders to something invalid."""


class ConfigError(ProblemsError):
    """A training TOML has errors (validation found problems)."""


class ModelError(OrchError):
    """A base checkpoint is missing, unreadable, or of an unsupported family."""


class LayoutError(OrchError):
    """The kohya folder layout cannot be created or synced as asked."""


class PreflightError(ProblemsError):
    """Training cannot start: the preflight found problems."""


class LaunchError(OrchError):
    """The trainer could not be started, or failed."""


class ResultsError(OrchError):
    """Training results (LoRA files, samples) cannot be read or exported as asked."""


class ContractError(OrchError):
    """sd-scripts' argument facts cannot be loaded or regenerated."""


class FileSystemError(OrchError):
    """The OS refused a read or write (disk full, no permission); says what was left done."""


class LockError(OrchError):
    """Another kohya-orch command is changing files in the same folder right now."""


class TokenizerError(OrchError):
    """The offline CLIP tokenizer folders cannot be built."""
