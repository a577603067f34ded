"""Check cells rewritten for grading: in the submission's kernel, each ``checks.*`` call only hands its answer out
(the spec arguments are dropped, and so is code in the cell that only computes them); in the source notebook's
clean kernel, each call also records its spec.

Example:
    >>> print(answer_cell("exp = f(x)\\nchecks.check_close(mine(x), exp, 'q1')", "4", VALUES))  # doctest: +SKIP
    __dfl_answer__('4.0', 'check_close', mine(x))
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

from . import checks
from .release import AssignmentError
from .values import KINDS

VALUES = Path(__file__).with_name("values.py")  # loaded by path in the kernels: no toolkit (and torch) import
SIGNATURES = {kind: inspect.signature(getattr(checks, kind)) for kind in KINDS}


@dataclass(frozen=True)
class Call:
    """One ``checks.<kind>(...)`` call in a check cell: its site id, kind and line."""

    site: str
    kind: str
    line: int


def _python(source: str, where: str) -> ast.Module:
    """The cell as Python (IPython magics turned into calls), parsed."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError as err:
        raise AssignmentError(f"{where}: the check cell is not valid Python ({err.msg}, line {err.lineno})") from None


def _kind(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.attr in KINDS:
        return f.attr
    if isinstance(f, ast.Name) and f.id in KINDS:
        return f.id
    return None


def _calls(tree: ast.Module) -> list[ast.Call]:
    calls = [n for n in ast.walk(tree) if _kind(n)]
    return sorted(calls, key=lambda n: (n.lineno, n.col_offset))


def check_calls(source: str, cell: str, where: str) -> list[Call]:
    """The check calls of a check cell, with site ids ``<cell>.<k>``; refuses a cell without any."""
    calls = _calls(_python(source, where))
    if not calls:
        raise AssignmentError(f"{where}: a check cell must call dfl_toolkit.classroom.checks (check_close, "
                              f"check_equal, ...): the grader scores the answers passed to those calls")
    return [Call(f"{cell}.{k}", _kind(c), c.lineno) for k, c in enumerate(calls)]


def _bound(call: ast.Call, kind: str, where: str) -> dict[str, ast.expr]:
    """The call's arguments by parameter name (the call must write them out: no * or **)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise AssignmentError(f"{where}, line {call.lineno}: write out the arguments of checks.{kind} (no * or **)")
    try:
        bound = SIGNATURES[kind].bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as err:
        raise AssignmentError(f"{where}, line {call.lineno}: checks.{kind}: {err}") from None
    return dict(bound.arguments)


def _loader(name: str) -> list[ast.stmt]:
    """Statements that load values.py by path (once per kernel) and bind its function ``name``."""
    code = (f"import importlib.util as __dfl_u, sys as __dfl_sys\n"
            f"if '_dfl_values' not in __dfl_sys.modules:\n"
            f"    __dfl_spec = __dfl_u.spec_from_file_location('_dfl_values', {str(VALUES)!r})\n"
            f"    __dfl_sys.modules['_dfl_values'] = __dfl_u.module_from_spec(__dfl_spec)\n"
            f"    __dfl_spec.loader.exec_module(__dfl_sys.modules['_dfl_values'])\n"
            f"__dfl_{name}__ = __dfl_sys.modules['_dfl_values'].{name}\n")
    return ast.parse(code).body


class _Replace(ast.NodeTransformer):
    def __init__(self, sites: dict[int, str], where: str, reference: bool):
        self.sites, self.where, self.reference = sites, where, reference

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        kind = _kind(node)
        if kind is None:
            return node
        site = self.sites[id(node)]
        args = _bound(node, kind, self.where)
        head = [ast.Constant(site), ast.Constant(kind)]
        if self.reference:
            call = ast.Call(ast.Name("__dfl_record__", ast.Load()), head,
                            [ast.keyword(k, v) for k, v in args.items()])
        else:
            answer = args.get(KINDS[kind][0])
            if answer is None:
                raise AssignmentError(f"{self.where}, line {node.lineno}: checks.{kind} has no answer argument")
            call = ast.Call(ast.Name("__dfl_answer__", ast.Load()), [*head, answer], [])
        return ast.copy_location(call, node)


def _rewrite(source: str, cell: str, where: str, reference: bool) -> ast.Module:
    tree = _python(source, where)
    sites = {id(c): f"{cell}.{k}" for k, c in enumerate(_calls(tree))}
    return _Replace(sites, where, reference).visit(tree)


# -------------------------------------------------------------------------- slicing out spec-only code


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _binding(stmt: ast.stmt) -> set[str] | None:
    """The names a statement only binds (assignment to names, def, class, import), or None for any other."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
        stmt, (ast.AnnAssign, ast.AugAssign)) else None
    if targets is None:
        return None
    names: set[str] = set()
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, (ast.Attribute, ast.Subscript)):
                return None  # assigns into an object: a side effect
            if isinstance(n, ast.Name):
                names.add(n.id)
    return names


def _is_print(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "print")


def _answers(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__dfl_answer__" for n in ast.walk(node))


def _blocks(node: ast.AST) -> list[list[ast.stmt]]:
    """The statement lists directly inside ``node`` (bodies, else and finally blocks, except handlers, cases)."""
    out = []
    for value in ast.iter_fields(node):
        items = value[1] if isinstance(value[1], list) else []
        if items and isinstance(items[0], ast.stmt):
            out.append(items)
        out += [h.body for h in items if isinstance(h, (ast.ExceptHandler, ast.match_case))]
    return out


def _flat(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement, nested ones too, but not inside a def or class (those count as one binding)."""
    out = []
    for s in stmts:
        out.append(s)
        if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in _blocks(s):
                out += _flat(block)
    return out


def _own_loads(stmt: ast.stmt) -> set[str]:
    """Names a compound statement loads in its own header (its nested statements count on their own)."""
    names: set[str] = set()
    for _, value in ast.iter_fields(stmt):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (ast.ExceptHandler, ast.match_case)):
                names |= _loads(item.type) if isinstance(item, ast.ExceptHandler) and item.type else set()
            elif isinstance(item, ast.AST) and not isinstance(item, ast.stmt):
                names |= _loads(item)
    return names


def _slice(tree: ast.Module) -> ast.Module:
    """Drop prints, and every binding that no kept statement needs: what only fed the spec arguments (now gone)."""
    stmts = _flat(tree.body)
    drop = {id(s) for s in stmts if (_binding(s) is not None or _is_print(s)) and not _answers(s)}
    needed: set[str] = set()
    for s in stmts:
        if id(s) not in drop:
            needed |= _own_loads(s)
    changed = True
    while changed:
        changed = False
        for s in stmts:
            if id(s) in drop and not _is_print(s) and _binding(s) & needed:
                drop.discard(id(s))
                needed |= _loads(s)  # a kept def keeps everything its body uses
                changed = True

    def prune(stmts: list[ast.stmt], keep_empty: bool) -> list[ast.stmt]:
        kept = [s for s in stmts if id(s) not in drop]
        for s in kept:
            if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for block in _blocks(s):
                    block[:] = prune(block, keep_empty=False)
        return kept if kept or keep_empty else [ast.Pass()]

    tree.body = prune(tree.body, keep_empty=True)
    return ast.fix_missing_locations(tree)


# -------------------------------------------------------------------------- the two forms


def answer_cell(source: str, cell: str, header: str = "") -> str:
    """The check cell as the submission's kernel runs it: each check call publishes its answer only; code that
    only computes spec arguments (expected values) and prints are left out."""
    where = f"check cell {cell}"
    tree = _slice(_rewrite(source, cell, where, reference=False))
    tree.body = _loader("answer") + tree.body
    return (header + "\n" if header else "") + ast.unparse(ast.fix_missing_locations(tree))


def reference_cell(source: str, cell: str, header: str = "") -> str:
    """The check cell as the clean reference kernel runs it: every call records its answer and spec, then runs."""
    tree = _rewrite(source, cell, f"check cell {cell}", reference=True)
    tree.body = _loader("record") + tree.body
    return (header + "\n" if header else "") + ast.unparse(ast.fix_missing_locations(tree))
