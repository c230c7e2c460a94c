"""An import-linter contract the built-in types cannot say: only views read the request.

``from flask import request`` is an import of the package ``flask``, not of a module ``flask.request``,
so a ``forbidden`` contract cannot tell it from ``from flask import Blueprint``. This contract reads
each module's source and names every import of ``flask.request``, ``flask.session`` or
``flask_login.current_user`` (at any depth, inside functions too) by a module outside ``allowed``.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

#: module → names that carry the web request's context
WEB_CONTEXT = {"flask": {"request", "session"}, "flask_login": {"current_user"}}


def web_context_imports(module: str) -> list[tuple[int, str]]:
    """(line, what) for each import of the request's context in the module's source."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), spec.origin)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in WEB_CONTEXT:
            for alias in node.names:
                if alias.name in WEB_CONTEXT[node.module]:
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


class WebContextInViewsOnly(Contract):
    """Modules of ``root_packages`` outside ``allowed`` (fnmatch patterns) do not import the request."""

    allowed = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = self.session_options["root_packages"]
        offences = []
        for module in sorted(graph.modules):
            if module.split(".")[0] not in roots:
                continue
            if any(fnmatch.fnmatchcase(module, pattern) for pattern in self.allowed):
                continue
            offences += [(module, line, what) for line, what in web_context_imports(module)]
        return ContractCheck(kept=not offences, metadata={"offences": offences})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, line, what in check.metadata["offences"]:
            output.print_error(f"{module}:{line} imports {what}; only views may read the request "
                               "(pass what the service needs as arguments)")
            output.new_line()
