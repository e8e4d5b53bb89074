"""Flet components without a renderer: render a ``@ft.component`` to a plain control tree, look
controls up in it, and fire their handlers the way Flet would (an ``ft.Event`` whose ``control`` is
the control itself).

``@ft.component`` wraps a function so that calling it needs a current renderer and returns a
``Component`` node (``fn``/``args``/``kwargs``) that Flet renders later. :func:`render` binds a
``Renderer``, calls the component, and expands every ``Component`` it meets — the root and any
nested one, e.g. the screen passed to ``Shell`` — into the body its function returns, rendered in
its own frame (so hooks find their component), and puts that body where the node was. What comes
back holds only ordinary controls, walked generically through every dataclass field that holds a
control or a list of them (``controls``, ``content``, ``actions``, ``leading``, ``title``,
``destinations``, ``label``, ``badge`` …).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import flet as ft
from flet.components.component import Component, Renderer
from flet.controls.base_control import BaseControl
from flet.utils.object_model import get_param_count

STRING_FIELDS = ("value", "content", "label", "text")  # where a control carries its words as a str


def _expand(node: Any) -> Any:
    if isinstance(node, Component):
        body = Renderer(node).render(node.fn, *node.args, **node.kwargs)
        return _expand(body)
    if isinstance(node, list | tuple):
        return type(node)(_expand(item) for item in node)
    if isinstance(node, BaseControl):
        for f in dataclasses.fields(node):
            if f.name.startswith("_"):
                continue
            value = getattr(node, f.name, None)
            if isinstance(value, BaseControl) or (
                isinstance(value, list | tuple) and any(isinstance(v, BaseControl) for v in value)
            ):
                # Component nodes are frozen; the controls around them may be too: set past that.
                object.__setattr__(node, f.name, _expand(value))
    return node


def render(component_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The control tree ``component_fn(*args, **kwargs)`` renders to, with nested components
    expanded. Works for a ``@ft.component`` function and for a plain function returning controls."""
    with Renderer().with_context():
        return _expand(component_fn(*args, **kwargs))


def children(control: BaseControl) -> Iterator[BaseControl]:
    """The controls held directly by ``control``'s fields, in field order."""
    for f in dataclasses.fields(control):
        if f.name.startswith("_"):
            continue
        value = getattr(control, f.name, None)
        if isinstance(value, BaseControl):
            yield value
        elif isinstance(value, list | tuple):
            yield from (v for v in value if isinstance(v, BaseControl))


def walk(tree: Any) -> Iterator[BaseControl]:
    """Every control in the tree, depth first (a control before the controls it holds)."""
    if isinstance(tree, list | tuple):
        for item in tree:
            yield from walk(item)
        return
    if not isinstance(tree, BaseControl):
        return
    assert not isinstance(tree, Component), f"unexpanded component {tree}"
    yield tree
    for child in children(tree):
        yield from walk(child)


def find_all(tree: Any, *, type: type | tuple[type, ...] | None = None, key: str | None = None) -> list[Any]:
    """Controls of ``type`` (an ``isinstance`` check) and/or with ``key``, in tree order."""
    return [
        c
        for c in walk(tree)
        if (type is None or isinstance(c, type)) and (key is None or getattr(c, "key", None) == key)
    ]


def find(tree: Any, *, key: str | None = None, type: type | tuple[type, ...] | None = None) -> Any:
    """The one control with ``key`` (and/or of ``type``); AssertionError when there is none or
    there are several (a key names one control on a screen)."""
    found = find_all(tree, type=type, key=key)
    assert found, f"no control with key={key!r} type={type!r}; keys here: {keys(tree)}"
    assert len(found) == 1, f"{len(found)} controls with key={key!r} type={type!r}"
    return found[0]


def has(tree: Any, *, key: str) -> bool:
    return bool(find_all(tree, key=key))


def keys(tree: Any) -> list[str]:
    return [str(c.key) for c in walk(tree) if getattr(c, "key", None) is not None]


def texts(tree: Any) -> list[str]:
    """Every word the tree shows: ``Text`` values (also inside buttons, chips, tiles…) and the
    string labels and contents of controls (text fields, destinations, buttons given a str)."""
    out: list[str] = []
    for c in walk(tree):
        if isinstance(c, ft.Text):
            if c.value:
                out.append(str(c.value))
            continue
        for name in STRING_FIELDS:
            value = getattr(c, name, None)
            if isinstance(value, str) and value and name != "value":
                out.append(value)
    return out


def text(tree: Any) -> str:
    """All of :func:`texts` in one string (for ``in`` checks)."""
    return "\n".join(texts(tree))


class DroppedCoroutine(AssertionError):
    """A handler that is not an ``async def`` returned a coroutine: Flet calls such a handler and
    throws away what it returns, so the coroutine never runs (the button does nothing)."""


async def fire(handler: Callable[..., Any] | None, event: ft.Event) -> Any:
    """Call an event handler the way Flet's ``BaseControl._trigger_event`` does: an ``async def``
    (or async generator) is awaited (iterated); any other callable is called and its result
    dropped — with the event, or without when it declares no parameter. A plain callable that
    returns a coroutine (``lambda e: state.sync_now()``) raises :class:`DroppedCoroutine`, because
    in the app that work would never happen."""
    assert handler is not None, f"{type(event.control).__name__} has no handler for {event.name!r}"
    with_event = get_param_count(handler) != 0

    def call() -> Any:
        return handler(event) if with_event else handler()

    if inspect.iscoroutinefunction(handler):
        return await call()
    if inspect.isasyncgenfunction(handler):
        async for _ in call():
            pass
        return None
    if inspect.isgeneratorfunction(handler):
        for _ in call():
            pass
        return None
    result = call()
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited, as in the app (and no "never awaited" warning here)
        key = getattr(event.control, "key", None)
        raise DroppedCoroutine(
            f"the {event.name!r} handler of {type(event.control).__name__}(key={key!r}) is not an async "
            f"function but returns {result!r}: Flet calls it and drops the coroutine, so nothing happens"
        )
    return result


async def click(control: BaseControl) -> Any:
    assert not getattr(control, "disabled", False), f"{control} is disabled"
    return await fire(control.on_click, ft.Event(name="click", control=control))


async def select(chip: ft.Chip) -> Any:
    """Tap a chip: Flet flips ``selected`` and sends ``select``."""
    chip.selected = not chip.selected
    return await fire(chip.on_select, ft.Event(name="select", control=chip))


async def change(field: BaseControl, value: Any) -> Any:
    """Type into a text field: the new ``value`` is on the control the event carries."""
    field.value = value
    return await fire(field.on_change, ft.Event(name="change", control=field))


async def submit(field: BaseControl) -> Any:
    return await fire(field.on_submit, ft.Event(name="submit", control=field))


async def choose(bar: BaseControl, index: int) -> Any:
    """Pick destination ``index`` of a NavigationBar / NavigationRail."""
    bar.selected_index = index
    return await fire(bar.on_change, ft.Event(name="change", control=bar))


async def pick(dropdown: ft.Dropdown, key: str) -> Any:
    """Choose the option ``key`` of a dropdown: Flet sets ``value`` and sends ``select``."""
    assert not getattr(dropdown, "disabled", False), f"{dropdown} is disabled"
    assert key in [o.key for o in dropdown.options], f"no option {key!r} in {[o.key for o in dropdown.options]}"
    dropdown.value = key
    return await fire(dropdown.on_select, ft.Event(name="select", control=dropdown))
