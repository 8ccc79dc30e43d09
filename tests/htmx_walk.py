"""A small stand-in for htmx over the Flask test client: what a page's hx-get / hx-post controls would request.

Used by the walk over every page (test_rendered_markup.py). It reads a page with lxml, finds the elements htmx
would act on, builds the request htmx would send (the form's values, hx-vals, the clicked button, HX-Request
and HX-Target headers), and swaps the answer into its copy of the page (outerHTML / innerHTML, out-of-band
elements by id), so the next step sees the page as the browser would.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import lxml.html

BAD_PREFIX = "hx_"


def parse(text: str):
    """A page or a fragment as one element tree (a fragment is wrapped in a body)."""
    if "<html" in text[:500].lower():
        return lxml.html.document_fromstring(text)
    return lxml.html.document_fromstring(f"<html><body>{text}</body></html>")


def bad_attributes(text: str) -> list[str]:
    """Every element carrying an attribute whose name starts with hx_ (htmx ignores it)."""
    found = []
    for element in parse(text).iter():
        if not isinstance(element.tag, str):
            continue
        names = [name for name in element.attrib if name.lower().startswith(BAD_PREFIX)]
        if names:
            found.append(f"<{element.tag} {' '.join(names)} name={element.get('name')!r} id={element.get('id')!r}>")
    return found


def _inherited(element, name: str):
    while element is not None:
        value = element.get(name)
        if value is not None:
            return value, element
        element = element.getparent()
    return None, None


def _closest_form(element):
    while element is not None:
        if element.tag == "form":
            return element
        element = element.getparent()
    return None


def _hx_vals(element) -> dict:
    values: dict = {}
    while element is not None:
        raw = element.get("hx-vals")
        if raw:
            for key, value in json.loads(raw).items():
                values.setdefault(key, value)
        element = element.getparent()
    return values


@dataclass
class Step:
    """One request htmx would send, and where its answer goes."""

    method: str
    url: str
    data: list[tuple[str, str]] = field(default_factory=list)
    target_id: str | None = None
    swap: str = "innerHTML"
    label: str = ""

    def key(self) -> tuple:
        return self.method, self.url, tuple(sorted((k, v) for k, v in self.data if k != "csrf_token"))

    def headers(self) -> dict[str, str]:
        headers = {"HX-Request": "true"}
        if self.target_id:
            headers["HX-Target"] = self.target_id
        return headers


def _target_of(element) -> tuple[str | None, str]:
    target, owner = _inherited(element, "hx-target")
    swap = (_inherited(element, "hx-swap")[0] or "innerHTML").split()[0]
    if target is None or target == "this":
        node = owner if target == "this" else element
        return node.get("id"), swap
    if target.startswith("#"):
        return target[1:], swap
    if target.startswith("closest "):
        selector = target.removeprefix("closest ").strip()
        node = element
        while node is not None and not (node.tag == selector or (selector.startswith("#") and node.get("id") == selector[1:])):
            node = node.getparent()
        return (node.get("id") if node is not None else None), swap
    return None, swap


def _form_values(form, tree) -> list[tuple[str, str]]:
    if form is None:
        return []
    return [(name, value) for name, value in form.form_values()]


def _included_values(element, tree) -> list[tuple[str, str]]:
    include = element.get("hx-include")
    if include:
        if include == "closest form":
            return _form_values(_closest_form(element), tree)
        if include.startswith("#"):
            found = tree.get_element_by_id(include[1:], None)
            if found is not None:
                return _form_values(found if found.tag == "form" else _closest_form(found), tree)
        return []
    return []


def steps_of(tree, page_url: str) -> list[tuple[Step, object]]:
    """The requests htmx would send from this page, each with the page state it is sent from.

    A control that re-renders on change is tried with each of its values (each option of a select, each radio
    of a group inside it), a form with hx-post with each of its submit buttons (never one that asks for a
    confirmation: those send or delete), and 確定 with the text inputs emptied (the refused-input fragment).
    """
    found: list[tuple[Step, object]] = []
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.get("data-confirm") is not None:
            continue
        for method in ("get", "post"):
            url = element.get(f"hx-{method}")
            if url is None:
                continue
            url = url or page_url
            if element.tag == "form":
                found.extend(_form_submissions(tree, element, url))
            else:
                found.extend(_control_variants(tree, element, method.upper(), url))
    return found


def _step(element, method: str, url: str, data: list[tuple[str, str]], label: str) -> Step:
    target_id, swap = _target_of(element)
    merged = list(data) + [(k, str(v)) for k, v in _hx_vals(element).items() if k not in {n for n, _ in data}]
    return Step(method, url, merged, target_id, swap, label)


def _values_for(tree, element, method: str) -> list[tuple[str, str]]:
    included = _included_values(element, tree)
    if included or element.get("hx-include"):
        values = included
    elif method == "POST":
        values = _form_values(_closest_form(element), tree)
    else:
        values = []
    name = element.get("name")
    if name and element.tag in ("input", "select", "textarea") and method == "GET":
        values = values + [(name, element.value or "")]
    if element.tag == "button" and name:
        values = values + [(name, element.get("value", ""))]
    return values


def _control_variants(tree, element, method: str, url: str) -> list[tuple[Step, object]]:
    variants = []
    if element.tag == "select" and element.get("name") and element.get("multiple") is None:
        options = [o.get("value", o.text_content()) for o in element.iter("option")]
        for value in options or [""]:
            state = copy.deepcopy(tree)
            twin = _twin(state, tree, element)
            twin.value = value
            variants.append((_step(twin, method, url, _values_for(state, twin, method), f"{element.get('name')}={value}"),
                             state))
        return variants
    radios = [r for r in element.iter("input") if r.get("type") == "radio"]
    if radios and element.tag != "input":
        for radio in radios:
            state = copy.deepcopy(tree)
            twin_radio = _twin(state, tree, radio)
            for other in state.iter("input"):
                if other.get("type") == "radio" and other.get("name") == radio.get("name"):
                    other.checked = False
            twin_radio.checked = True
            twin = _twin(state, tree, element)
            variants.append((_step(twin, method, url, _values_for(state, twin, method),
                                   f"{radio.get('name')}={radio.get('value')}"), state))
        return variants
    return [(_step(element, method, url, _values_for(tree, element, method), element.get("name") or element.tag), tree)]


def _form_submissions(tree, form, url: str) -> list[tuple[Step, object]]:
    submissions = []
    buttons = [b for b in form.iter("button") if (b.get("type") or "submit") == "submit"
               and b.get("data-confirm") is None and b.get("hx-post") is None and b.get("hx-get") is None]
    values = _form_values(form, tree)
    for button in buttons:
        data = list(values)
        if button.get("name"):
            data.append((button.get("name"), button.get("value", "")))
        submissions.append((_step(form, "POST", url, data, f"button {button.get('value') or button.text_content()}"), tree))
        if button.get("value") == "save":
            blank_inputs = {i.get("name") for i in form.iter("input") if (i.get("type") or "text") == "text"}
            emptied = [(k, "" if k in blank_inputs else v) for k, v in data]
            submissions.append((_step(form, "POST", url, emptied, "確定 with text inputs emptied"), tree))
    return submissions


def _path(tree, element) -> list[int]:
    path = []
    while element.getparent() is not None:
        parent = element.getparent()
        path.append(list(parent).index(element))
        element = parent
    return list(reversed(path))


def _twin(state, tree, element):
    """The element at the same place in a copy of the tree."""
    node = state.getroottree().getroot() if hasattr(state, "getroottree") else state
    for index in _path(tree, element):
        node = node[index]
    return node


def swapped(tree, step: Step, text: str):
    """The page after htmx swapped `text` (the answer to `step`) into it; None when it cannot be placed."""
    state = copy.deepcopy(tree)
    pieces = lxml.html.fragments_fromstring(text) if text.strip() else []
    pieces = [p for p in pieces if isinstance(p, lxml.html.HtmlElement)]
    main = []
    for piece in pieces:
        if piece.get("hx-swap-oob") is not None:
            old = state.get_element_by_id(piece.get("id"), None)
            if old is not None:
                old.getparent().replace(old, piece)
        else:
            main.append(piece)
    if not step.target_id:
        return None
    target = state.get_element_by_id(step.target_id, None)
    if target is None:
        return None
    if step.swap == "outerHTML":
        parent = target.getparent()
        index = list(parent).index(target)
        parent.remove(target)
        for offset, piece in enumerate(main):
            parent.insert(index + offset, piece)
    else:
        for child in list(target):
            target.remove(child)
        target.text = None
        for piece in main:
            target.append(piece)
    return state
