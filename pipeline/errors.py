"""User-facing errors: each says where (file, line or field path) and what to do, and the CLI prints it without a traceback."""

from __future__ import annotations


class PipelineError(Exception):
    """An error the user can act on. `where` is a file:line or a field path; `hint` says what to do."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class ConfigError(PipelineError):
    """The run configuration (YAML or flags) is invalid."""


class SeedError(PipelineError):
    """One or more seed rows are invalid. `problems` lists every (where, reason) found, not just the first."""

    def __init__(self, problems: list[tuple[str, str]], *, hint: str | None = None) -> None:
        self.problems = problems
        shown = "\n".join(f"  {w}: {r}" for w, r in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} invalid seed row(s):\n{shown}{more}", hint=hint)


class PolicyError(PipelineError):
    """The policy spec is invalid."""


class RunFailed(PipelineError):
    """The run stopped: a failure budget was spent, counts did not add up, or a version is inconsistent."""

    exit_code = 1
