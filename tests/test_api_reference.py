"""docs/api.md is checked against the code, as docs/cli.md is against ``--help``.

Why: the API reference is written by hand, so it drifts from the code (it once documented a
``RetrievalConfig.from_mapping`` that never existed and left out fields). Nothing here is a frozen
copy of the API: every check compares what the page says with what the code is, so whoever changes
the API keeps the page accurate and this test tells them where it is not:

* every ``import`` in a ``python`` block resolves, and every call in the blocks binds to the real
  signature (keywords that exist, required arguments given), following names through the blocks
  the way a reader does (``hc = HybridContext.open(...)`` makes ``hc`` a ``HybridContext`` when
  ``open`` says so in its return annotation); attributes read off such a value exist;
* every inline ``hybridctx.x.y`` and ``Name.attr`` reference and every heading's name resolves,
  and every ``path/to/file.py`` exists;
* every field table (a table whose first header cell is ``field of `Name` ``) lists exactly the
  dataclass's fields, in order, with each default as ``repr`` writes it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import hybridctx

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_CODE = re.compile(r"`([^`\n]+)`")
_TABLE_HEAD = re.compile(r"^\|\s*field of `([\w.]+)`\s*\|")
REQUIRED = "required"


@dataclasses.dataclass(frozen=True)
class _Instance:
    """A value of class ``cls`` in a code block, known from a constructor or a return annotation."""

    cls: type


_UNKNOWN = object()


# -- reading the page -----------------------------------------------------------------------------
def _blocks(text: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == "python"]


def _prose(text: str) -> str:
    return _FENCE.sub("", text)


def _imported_modules(text: str) -> list[types.ModuleType]:
    """Modules the page's blocks import from, ``hybridctx`` first: where bare names are looked up."""
    found = [hybridctx]
    for block in _blocks(text):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module:
                try:
                    found.append(importlib.import_module(node.module))
                except ImportError:
                    pass
    return found


def _resolve(name: str, modules: list[types.ModuleType]) -> Any:
    """``hybridctx.a.b``, ``Name`` or ``Name.attr``; raises LookupError when it does not exist."""
    parts = name.split(".")
    if parts[0] == "hybridctx":
        obj: Any = hybridctx
        for i, part in enumerate(parts[1:], 1):
            if hasattr(obj, part):
                obj = getattr(obj, part)
                continue
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                raise LookupError(name) from None
        return obj
    for module in modules:
        if hasattr(module, parts[0]):
            obj = getattr(module, parts[0])
            break
    else:
        obj = _loaded(parts[0])
    for part in parts[1:]:
        if not _has_attr(obj, part):
            raise LookupError(name)
        obj = getattr(obj, part, None)
    return obj


def _loaded(name: str) -> Any:
    """A bare name the page uses without importing it (an internal such as ``GrowthRule``): the one
    object of that name among the loaded ``hybridctx`` modules; LookupError when none or several."""
    found = {id(v): v for m, mod in sorted(sys.modules.items()) if m.startswith("hybridctx.") and mod is not None
             for v in [getattr(mod, name, None)] if v is not None and not isinstance(v, types.ModuleType)}
    if len(found) != 1:
        raise LookupError(name)
    return next(iter(found.values()))


def _has_attr(obj: Any, name: str) -> bool:
    if hasattr(obj, name):
        return True
    if isinstance(obj, type):
        if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
            return True
        return name in _instance_attributes(obj)
    return False


def _instance_attributes(cls: type) -> set[str]:
    """What an instance has that its class does not show: annotated names and ``self.x = ...`` targets."""
    names: set[str] = set()
    for klass in cls.__mro__[:-1]:
        names.update(getattr(klass, "__annotations__", {}))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    names.add(target.attr)
    return names


# -- the code blocks ------------------------------------------------------------------------------
def _return_class(func: Any) -> Any:
    """The class ``func`` says it returns (``X`` or ``X | None``), else unknown."""
    try:
        hints = typing.get_type_hints(func)
        ret = hints.get("return", _UNKNOWN)
    except Exception:  # a forward reference only a type checker sees
        ret = getattr(func, "__annotations__", {}).get("return", _UNKNOWN)
        if isinstance(ret, str):
            space = {**vars(hybridctx), **getattr(func, "__globals__", {})}
            ret = space.get(ret.strip("'\""), _UNKNOWN)
    if ret is typing.Any or ret is object:  # says nothing (typing.Any is a class since Python 3.11)
        return _UNKNOWN
    if isinstance(ret, type) and ret is not type(None):
        return _Instance(ret)
    args = [a for a in typing.get_args(ret) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and typing.get_origin(ret) in (typing.Union, types.UnionType):
        return _Instance(args[0])
    return _UNKNOWN


class _Checker(ast.NodeVisitor):
    """Walks the page's blocks in order, one namespace for all, and collects what does not match."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.problems: list[str] = []

    # values ------------------------------------------------------------------------------------
    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return self.env.get(node.id, _UNKNOWN)
        if isinstance(node, ast.Attribute):
            owner = self.value(node.value)
            if owner is _UNKNOWN:
                return _UNKNOWN
            cls = owner.cls if isinstance(owner, _Instance) else owner
            if not _has_attr(cls, node.attr):
                self.problems.append(f"line {node.lineno}: {_name(cls)} has no attribute {node.attr!r}")
                return _UNKNOWN
            if isinstance(owner, _Instance):
                member = inspect.getattr_static(cls, node.attr, None)
                if isinstance(member, property):
                    return _return_class(member.fget)
                if callable(getattr(cls, node.attr, None)):
                    return ("method", cls, node.attr)
                return _field_class(cls, node.attr)
            return getattr(owner, node.attr)
        if isinstance(node, ast.Call):
            return self.call(node)
        return _UNKNOWN

    def call(self, node: ast.Call) -> Any:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            self.visit(arg)
        callee = self.value(node.func)
        if callee is _UNKNOWN:
            return _UNKNOWN
        if isinstance(callee, tuple):  # a method read off an instance: bind with the instance as self
            _, cls, attr = callee
            func, extra = _method(cls, attr)
        else:
            func, extra = callee, 0
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return _UNKNOWN
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return _UNKNOWN
        positional = [None] * (extra + len(node.args))
        keywords = {k.arg: None for k in node.keywords if k.arg}
        params = signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            # A keyword named like a positional-only parameter goes to **kwargs in a real call.
            only = {p.name for p in params if p.kind is p.POSITIONAL_ONLY}
            keywords = {k: v for k, v in keywords.items() if k not in only}
        try:
            signature.bind(*positional, **keywords)
        except TypeError as exc:
            self.problems.append(f"line {node.lineno}: {ast.unparse(node.func)}(...) does not match "
                                 f"{_name(func)}{signature}: {exc}")
        if isinstance(func, type):
            return _Instance(func)
        return _return_class(func)

    # statements --------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            try:
                module = importlib.import_module(alias.name)
            except ImportError as exc:
                self.problems.append(f"line {node.lineno}: import {alias.name}: {exc}")
                continue
            self.env[alias.asname or alias.name.split(".")[0]] = module if alias.asname else importlib.import_module(
                alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        try:
            module = importlib.import_module(node.module or "")
        except ImportError as exc:
            self.problems.append(f"line {node.lineno}: from {node.module} import: {exc}")
            return
        for alias in node.names:
            if not hasattr(module, alias.name):
                self.problems.append(f"line {node.lineno}: {node.module} has no {alias.name!r}")
                continue
            self.env[alias.asname or alias.name] = getattr(module, alias.name)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.value(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.env[target.id] = value

    def visit_Call(self, node: ast.Call) -> None:
        self.call(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.value(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.slice)  # what a subscript yields is not followed


def _method(cls: type, attr: str) -> tuple[Any, int]:
    """The function behind ``instance.attr`` and how many leading arguments the instance fills."""
    static = inspect.getattr_static(cls, attr, None)
    if isinstance(static, (staticmethod, classmethod)):
        return getattr(cls, attr), 0
    return getattr(cls, attr), 1


def _field_class(cls: type, attr: str) -> Any:
    if dataclasses.is_dataclass(cls):
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            return _UNKNOWN
        hint = hints.get(attr)
        if isinstance(hint, type):
            return _Instance(hint)
    return _UNKNOWN


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def check_blocks(text: str) -> list[str]:
    checker = _Checker()
    for i, block in enumerate(_blocks(text), 1):
        before = len(checker.problems)
        for statement in ast.parse(block).body:
            checker.visit(statement)
        checker.problems[before:] = [f"python block {i}, {p}" for p in checker.problems[before:]]
    return checker.problems


# -- prose ----------------------------------------------------------------------------------------
def check_references(text: str) -> list[str]:
    """Inline ``hybridctx.x``, ``Name.attr`` and ``*.py`` references, and the names in headings."""
    modules = _imported_modules(text)
    problems = []
    prose = _prose(text)
    groups = set(re.findall(r"\bgroups? `([\w.]+)`", prose))  # entry-point group names, not modules
    for span in _CODE.findall(prose):
        if span in groups:
            continue
        if re.fullmatch(r"[\w./-]+\.py", span):
            if not (ROOT / span).is_file():
                problems.append(f"`{span}`: no such file")
        elif re.fullmatch(r"hybridctx(\.\w+)+", span) or re.fullmatch(r"[A-Z]\w*\.\w+", span):
            try:
                _resolve(span, modules)
            except LookupError:
                problems.append(f"`{span}` does not exist")
    for heading in re.findall(r"^#+ .*$", prose, re.M):
        for span in _CODE.findall(heading):
            name = span.split("(")[0]
            if re.fullmatch(r"[\w.]+", name):
                try:
                    _resolve(name, modules)
                except LookupError:
                    problems.append(f"heading {heading!r}: `{name}` does not exist")
    return problems


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def field_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """``(class name, rows)`` of every field table in the page."""
    tables = []
    lines = _prose(text).splitlines()
    for i, line in enumerate(lines):
        match = _TABLE_HEAD.match(line)
        if match:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            tables.append((match.group(1), rows))
    return tables


def check_field_tables(text: str) -> list[str]:
    modules = _imported_modules(text)
    problems = []
    for name, rows in field_tables(text):
        try:
            cls = _resolve(name, modules)
        except LookupError:
            problems.append(f"field table of `{name}`: no such class")
            continue
        if not dataclasses.is_dataclass(cls):
            problems.append(f"field table of `{name}`: not a dataclass")
            continue
        fields = dataclasses.fields(cls)
        documented = [r[0].strip("`") for r in rows]
        if documented != [f.name for f in fields]:
            missing = [f.name for f in fields if f.name not in documented]
            extra = [d for d in documented if d not in {f.name for f in fields}]
            problems.append(f"field table of `{name}` lists {documented}, the class has {[f.name for f in fields]}"
                            f" (missing {missing}, not fields {extra}; order matters)")
            continue
        for f, row in zip(fields, rows):
            if f.default is not dataclasses.MISSING:
                want = repr(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                want = repr(f.default_factory())
            else:
                want = REQUIRED
            got = row[1].strip("`") if len(row) > 1 else ""
            if got != want:
                problems.append(f"field table of `{name}`: {f.name} default is {want!r}, the page says {got!r}")
    return problems


# -- the tests ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page() -> str:
    return DOC.read_text(encoding="utf-8")


def test_examples_import_and_call_what_exists(page: str) -> None:
    problems = check_blocks(page)
    assert not problems, "docs/api.md examples do not match the code:\n" + "\n".join(problems)


def test_references_and_headings_resolve(page: str) -> None:
    problems = check_references(page)
    assert not problems, "docs/api.md names things that do not exist:\n" + "\n".join(problems)


def test_field_tables_list_exactly_each_dataclass(page: str) -> None:
    assert field_tables(page), "docs/api.md has no field tables (| field of `Name` | default | ... |)"
    problems = check_field_tables(page)
    assert not problems, "docs/api.md field tables are stale:\n" + "\n".join(problems)


def test_the_settings_dataclasses_have_tables(page: str) -> None:
    documented = {name.rsplit(".", 1)[-1] for name, _ in field_tables(page)}
    assert {"EncoderConfig", "RetrievalConfig", "GrowthRule", "PackedContext", "Span"} <= documented


def test_the_checks_catch_drift() -> None:
    """Each check fails on the mistakes it exists for (a checker that cannot fail proves nothing)."""
    bad = """
## `HybridContext.no_such_method`

`RetrievalConfig.from_mapping` and `hybridctx.no_such_module` are in `hybridctx/no_such_file.py`.

```python
from hybridctx import HybridContext, RetrievalConfig, NoSuchName

hc = HybridContext.open("my.idx", no_such_option=1)
config = RetrievalConfig(mode="dense", no_such_field=2)
hc.retrieve()
hc.no_such_attribute
```

| field of `GrowthRule` | default | meaning |
| --- | --- | --- |
| `back` | `4` | wrong default |
| `forward` | `1` | |
"""
    blocks = "\n".join(check_blocks(bad))
    for expected in ("NoSuchName", "no_such_option", "no_such_field", "retrieve(...)", "no_such_attribute"):
        assert expected in blocks, (expected, blocks)
    references = "\n".join(check_references(bad))
    for expected in ("RetrievalConfig.from_mapping", "hybridctx.no_such_module", "no_such_file.py",
                     "HybridContext.no_such_method"):
        assert expected in references, (expected, references)
    tables = "\n".join(check_field_tables(bad))
    assert "missing ['within_paragraph', 'support']" in tables
    fixed = bad.replace("| `forward` | `1` | |", "| `forward` | `1` | |\n| `within_paragraph` | `True` | |\n"
                                                   "| `support` | `0.0` | |")
    assert check_field_tables(fixed) == ["field table of `GrowthRule`: back default is '3', the page says '4'"]
