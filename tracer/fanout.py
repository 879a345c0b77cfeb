"""Send the hooks' events to the recorders of nested traces, each getting those of its own classes."""

from __future__ import annotations

__all__ = ["FanOut"]


class FanOut:
    """Looks like one recorder to the hooks; passes every event to its recorders, outermost first,
    each only the events about its own classes. A recorder whose own code fails stops receiving
    (its trace keeps what it had). With one recorder it is a filter: for a trace left holding
    hooks that another trace installed."""

    def __init__(self, *members) -> None:
        self.members = members
        for member in members:
            member.fanned = True
        self.thread_id = members[0].thread_id
        self.call_stack: list = []  # the call hook pushes here; each member gets its own push
        self.internal_error: str | None = None
        self._passes: list[tuple] = []  # per open backward() call: the members that were told of it
        self.elsewhere = _Counts(members)  # calls and passes of other threads: every member counts them

    def _each(self, event, *args, about=None, variable=False) -> list:
        return [_safely(member, event, *args) if _takes(member, about, variable) else None
                for member in self.members]

    def call_enter(self, fn, args) -> None:
        """A Function call begins: the members recording it capture its new arguments."""
        self._each(lambda member: member.call_enter(fn, args), about=fn)

    def call_exit(self, fn, args, result, error) -> None:
        """A Function call ended: each member sees it as if its own hook had pushed it."""
        self.call_stack.pop()

        def record(member, *event):
            member.call_stack.append(fn)
            member.call_exit(fn, *event)
        self._each(record, args, result, error, about=fn)
        if not self.call_stack:  # the outermost call ended: what its entry captured is used
            for member in self.members:
                member.entry_values.clear()

    def step_enter(self, fn, grads):
        """A backward step begins; the token holds each member's own step (None: not a new step)."""
        tokens = tuple(self._each(lambda member: member.step_enter(fn, grads), about=fn))
        return None if all(token is None for token in tokens) else tokens

    def step_exit(self, tokens, grads_out, error) -> None:
        """A backward step ended."""
        for member, token in zip(self.members, tokens):
            if token is not None:
                _safely(member, lambda m: m.step_exit(token, grads_out, error))

    def pass_enter(self, root, options: dict, caller_frame) -> None:
        """``Variable.backward`` was called."""
        self._passes.append(tuple(_takes(member, root, True) for member in self.members))
        self._each(lambda member: member.pass_enter(root, options, caller_frame), about=root, variable=True)

    def pass_exit(self, error) -> None:
        """``Variable.backward`` returned or raised: only the members told of its start hear of it."""
        told = self._passes.pop() if self._passes else (True,) * len(self.members)
        for member, was_told in zip(self.members, told):
            if was_told:
                _safely(member, lambda m: m.pass_exit(error))


def _safely(member, event, *args):
    """``event(member, *args)`` unless the member stopped; a bug of ours stops that member only."""
    if member.internal_error is not None:
        return None
    try:
        return event(member, *args)
    except Exception as exc:  # noqa: BLE001 - one trace's bug must not stop the others
        member.internal_error = f"{type(exc).__name__}: {exc}"
        return None


def _takes(member, obj, variable: bool) -> bool:
    """Whether ``member`` records events about ``obj``: an object of the classes its trace hooked
    (a trace naming its classes gets no other engine's calls)."""
    hooks = member.hooks
    if obj is None or hooks is None:
        return True
    classes = hooks.variable_classes if variable else hooks.function_classes
    return not classes or isinstance(obj, tuple(classes))


class _Counts:
    """``recorder.elsewhere`` of all members at once (the hooks do ``elsewhere[i] += 1``)."""

    def __init__(self, members) -> None:
        self.members = members

    def __getitem__(self, index: int) -> int:
        return self.members[0].elsewhere[index]

    def __setitem__(self, index: int, value: int) -> None:
        added = value - self[index]
        for member in self.members:
            member.elsewhere[index] += added
