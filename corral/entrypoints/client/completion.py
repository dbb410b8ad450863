"""Shell completion: ``corral completion bash|zsh`` prints a script that asks ``corral __complete WORDS...`` for the
candidates, so completion follows the server's commands (from the cached API document) without regenerating it."""

from __future__ import annotations

from typing import Any

__all__ = ["complete", "completion_script"]

_BASH = r"""# corral bash completion: eval "$(corral completion bash)"
_corral_complete() {
    local IFS=$'\n'
    COMPREPLY=($(corral __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _corral_complete corral
"""

_ZSH = r"""#compdef corral
# corral zsh completion: eval "$(corral completion zsh)"
_corral_complete() {
    local -a candidates
    candidates=("${(@f)$(corral __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    compadd -a candidates
}
compdef _corral_complete corral
"""

SERVER_COMMANDS_HINT = ("serve", "migrate", "version", "config", "admin", "secrets")


def completion_script(shell: str) -> str:
    return _BASH if shell == "bash" else _ZSH


def complete(client: Any, words: list[str], *, client_commands: tuple[str, ...], extras: Any,
             operation_parser: Any) -> list[str]:
    """The candidates for the last of ``words`` (the word being typed) after the earlier ones; the command
    module passes its own parts in (this module is imported by it, never the other way round)."""
    CLIENT_COMMANDS, _extras = client_commands, extras

    current = words[-1] if words else ""
    before = words[:-1]
    ops = client.operations()
    if not before:
        names = [*CLIENT_COMMANDS, *SERVER_COMMANDS_HINT, *ops]
        return sorted({n for n in names if n.startswith(current)})
    verbs = ops.get(before[0])
    if verbs is None:
        return []
    if len(before) == 1:
        return [v for v in [*verbs, *_extras(verbs)] if v.startswith(current)]
    op = verbs.get(before[1])
    if op is None or not current.startswith("-"):
        return []
    flags = [s for action in operation_parser(op)._actions for s in action.option_strings if s.startswith("--")]
    return sorted(f for f in flags if f.startswith(current))
