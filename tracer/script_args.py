"""Command-line arguments that went to the wrong side of SCRIPT: meant for gradtrace, or for the script."""

from __future__ import annotations

import difflib
import os
import re

__all__ = ["before_dashes", "dashed_script", "dashed_script_message", "mixed_cluster", "option_like",
           "read_text", "names_itself", "misplaced_option"]


def before_dashes(args) -> list:
    """The arguments before a lone ``--`` (everything after it goes to the script untouched)."""
    args = list(args)
    return args[:args.index("--")] if "--" in args else args


def dashed_script(args, takes_value) -> str | None:
    """The script among the leading options of ``args`` whose name starts with a dash
    (``-dash.py`` reads as -d -a -s -h: the help, exit 0), or None. ``takes_value``: the names
    of the options that take a value."""
    leading = iter(args)
    for arg in leading:
        if not isinstance(arg, str) or not arg.startswith("-") or arg == "-":
            break  # SCRIPT: what follows it is the script's
        if arg in takes_value:
            next(leading, None)
        elif not arg.startswith("--") and arg.lower().endswith((".py", ".ipynb", ".json")) \
                and os.path.isfile(arg):
            return arg
    return None


def dashed_script_message(name: str, command: str) -> str:
    """How to name a script whose name starts with a dash, so it is not read as options."""
    return (f"a script whose name starts with a dash is taken for an option: "
            f"write it as ./{name}, e.g. gradtrace {command} ./{name} ...")


def mixed_cluster(args, takes_value, short) -> str | None:
    """Why a cluster of short options (``-vq``) that mixes gradtrace's own (``short``) with the
    script's must be written otherwise (the parser would give -q to gradtrace and only -v to the
    script), or None when there is none."""
    tokens = iter(args)
    for token in tokens:
        if isinstance(token, str) and token in takes_value:
            next(tokens, None)  # its value (-o -qx.svg): a file name, not options
            continue
        if not isinstance(token, str) or not re.fullmatch(r"-[A-Za-z]+", token) or len(token) < 3:
            continue
        letters = []
        for letter in token[1:]:
            letters.append(f"-{letter}")
            if f"-{letter}" in takes_value:
                break  # the rest is that option's value (-ofile.svg)
        ours = [name for name in letters if name in short]
        theirs = [name for name in letters if name not in short]
        if ours and theirs:
            whole = len(letters) == len(token) - 1  # no letters left over as an option's value
            apart = f"write them apart ({' '.join(letters)}), or " if whole and len(letters) <= 3 else ""
            return (f"{token} mixes gradtrace's {' '.join(ours)} with {' '.join(theirs)}, which gradtrace "
                    f"does not know: {apart}put the script's own options after -- (everything after it "
                    f"goes to the script)")
    return None


def option_like(script_args, known) -> list[str]:
    """The names of the script's arguments that look like options (``--name``, ``--name=value``,
    ``-o``) but are not among ``known``, gradtrace's options."""
    names = [token.split("=", 1)[0] for token in script_args]
    return [name for name in names if name not in known
            and (name.startswith("--") or re.fullmatch(r"-[A-Za-z]", name))]  # -o: steps has none


def read_text(path) -> str:
    """A file's text for a quick look (empty when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, TypeError):
        return ""


def names_itself(script_text: str, name: str) -> bool:
    """Whether the script's text names the option ``name`` (argparse, a usage text): then it is
    the script's own option."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", script_text) is not None


def misplaced_option(name: str, ours, elsewhere, command: str) -> str | None:
    """The warning for ``name``, which went to the script: a near miss of one of ``ours`` (the
    command's long options), or an option of the commands ``elsewhere``; else None."""
    close = difflib.get_close_matches(name, ours, n=1, cutoff=0.75) if name.startswith("--") else []
    if close:
        return (f"{name} went to the script as its own argument: did you mean gradtrace's "
                f"{close[0]}? (put the script's arguments after --, and this warning goes)")
    if elsewhere:
        return (f"{name} went to the script as its own argument: it is an option of gradtrace "
                f"{' and '.join(elsewhere)}, not of {command} (put the script's arguments "
                f"after --, and this warning goes)")
    return None
