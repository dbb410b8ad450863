"""A small, safe evaluator for the subset of expr-lang that Woodpecker's ``when.evaluate`` files use.

Supported: string literals ('...' or "..." with backslash escapes), ``true``/``false``/``nil``, integers,
list literals ``["a", "b"]``, variables (any identifier, looked up in the pipeline's environment — the
``CI_*`` variables; an unknown variable is empty, like expr's ``AllowUndefinedVariables``), parentheses,
``!``/``not``, ``&&``/``and``, ``||``/``or``, ``==``, ``!=``, ``in``, ``not in``, and the infix string
operators ``startsWith``, ``endsWith``, ``contains``. Anything else (``matches``, function calls, arithmetic,
member access) is a validation error naming the unsupported token: nothing here executes code, and every
expression is parsed when the file is validated, before any pipeline runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

__all__ = ["Expression", "ExpressionError", "parse_expression"]

_MAX_LENGTH = 4096
_MAX_DEPTH = 32


class ExpressionError(ValueError):
    """The expression is malformed or uses something outside the supported subset."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>\d+)
  | (?P<op>&&|\|\||==|!=|!|\(|\)|\[|\]|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

_WORD_OPS = {"and": "&&", "or": "||", "not": "!", "in": "in", "startsWith": "startsWith",
             "endsWith": "endsWith", "contains": "contains"}
_UNSUPPORTED_WORDS = {"matches", "let", "if", "else"}


@attrs.frozen
class _Tok:
    kind: str  # "str", "num", "op", "name", "end"
    value: str
    pos: int


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ExpressionError(f"unsupported character {source[pos]!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "string":
            body = text[1:-1]
            value = re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)), body)
            out.append(_Tok("str", value, pos))
        elif kind == "number":
            out.append(_Tok("num", text, pos))
        elif kind == "op":
            out.append(_Tok("op", text, pos))
        elif kind == "name":
            if text in _UNSUPPORTED_WORDS:
                raise ExpressionError(f"{text!r} is not supported in evaluate (position {pos + 1})")
            if text in _WORD_OPS:
                out.append(_Tok("op", _WORD_OPS[text], pos))
            else:
                out.append(_Tok("name", text, pos))
        pos = m.end()
    out.append(_Tok("end", "", pos))
    return out


# The tree: ("lit", value) | ("var", name) | ("list", [nodes]) | ("not", node) | (op, left, right)
_Ast = tuple[object, ...]


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.value != value:
            raise ExpressionError(f"expected {value!r} at position {tok.pos + 1}, found {tok.value or 'the end'!r}")

    def _nested(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpressionError("expression nested too deeply")

    def parse(self) -> _Ast:
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.value!r} at position {tok.pos + 1}")
        return node

    def or_(self) -> _Ast:
        left = self.and_()
        while self.peek().kind == "op" and self.peek().value == "||":
            self.take()
            left = ("||", left, self.and_())
        return left

    def and_(self) -> _Ast:
        left = self.not_()
        while self.peek().kind == "op" and self.peek().value == "&&":
            self.take()
            left = ("&&", left, self.not_())
        return left

    def not_(self) -> _Ast:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "!":
            self.take()
            self._nested()
            inner = self.not_()
            self.depth -= 1
            return ("not", inner)
        return self.comparison()

    def comparison(self) -> _Ast:
        left = self.primary()
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("==", "!=", "in", "startsWith", "endsWith", "contains"):
            self.take()
            return (tok.value, left, self.primary())
        if tok.kind == "op" and tok.value == "!" and self.tokens[self.i + 1].value == "in":  # "not in"
            self.i += 2
            return ("not", ("in", left, self.primary()))
        return left

    def primary(self) -> _Ast:
        tok = self.take()
        if tok.kind == "str":
            return ("lit", tok.value)
        if tok.kind == "num":
            return ("lit", int(tok.value))
        if tok.kind == "name":
            if tok.value in ("true", "false"):
                return ("lit", tok.value == "true")
            if tok.value == "nil":
                return ("lit", None)
            if self.peek().kind == "op" and self.peek().value == "(":
                raise ExpressionError(f"function calls ({tok.value}(...)) are not supported in evaluate")
            return ("var", tok.value)
        if tok.kind == "op" and tok.value == "(":
            self._nested()
            inner = self.or_()
            self.depth -= 1
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.value == "[":
            items: list[_Ast] = []
            if not (self.peek().kind == "op" and self.peek().value == "]"):
                items.append(self.primary())
                while self.peek().kind == "op" and self.peek().value == ",":
                    self.take()
                    items.append(self.primary())
            self.expect("]")
            return ("list", items)
        raise ExpressionError(f"unexpected {tok.value or 'end of expression'!r} at position {tok.pos + 1}")


def _truthy(value: object) -> bool:
    return value is not None and value is not False and value != ""


@attrs.frozen
class Expression:
    """A parsed ``evaluate`` expression; ``evaluate(env)`` never runs code."""

    source: str
    tree: _Ast = attrs.field(repr=False, eq=False)

    def evaluate(self, env: Mapping[str, str]) -> bool:
        """The boolean value of the expression over ``env``; ExpressionError when it is not a boolean."""
        result = self._eval(self.tree, env)
        if not isinstance(result, bool):
            raise ExpressionError(f"evaluate must give true or false, gave {result!r}")
        return result

    def _eval(self, node: _Ast, env: Mapping[str, str]) -> object:
        op = node[0]
        if op == "lit":
            return node[1]
        if op == "var":
            return env.get(str(node[1]), "")
        if op == "list":
            items = node[1]
            assert isinstance(items, list)
            return [self._eval(i, env) for i in items]
        if op == "not":
            value = self._eval(node[1], env)  # type: ignore[arg-type]
            if not isinstance(value, bool):
                raise ExpressionError(f"! needs a boolean, got {value!r}")
            return not value
        left_node, right_node = node[1], node[2]
        assert isinstance(left_node, tuple) and isinstance(right_node, tuple)
        if op == "&&":
            return _truthy(self._eval(left_node, env)) and _truthy(self._eval(right_node, env))
        if op == "||":
            return _truthy(self._eval(left_node, env)) or _truthy(self._eval(right_node, env))
        left, right = self._eval(left_node, env), self._eval(right_node, env)
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        if op == "in":
            if isinstance(right, list):
                return left in right
            return isinstance(right, str) and isinstance(left, str) and left in right
        if not isinstance(left, str) or not isinstance(right, str):
            raise ExpressionError(f"{op} needs strings on both sides")
        if op == "startsWith":
            return left.startswith(right)
        if op == "endsWith":
            return left.endswith(right)
        return right in left  # contains


def parse_expression(source: str) -> Expression:
    """Parse ``source``; ExpressionError names what is wrong or unsupported."""
    if len(source) > _MAX_LENGTH:
        raise ExpressionError(f"expression longer than {_MAX_LENGTH} characters")
    if not source.strip():
        raise ExpressionError("empty expression")
    return Expression(source, _Parser(_tokens(source)).parse())
