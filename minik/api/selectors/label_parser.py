"""The label selector grammar: a port of apimachinery's `labels.Parse`.

A small lexer and a recursive-descent parser over `k=v`, `k==v`, `k!=v`,
`k in (a,b)`, `k notin (a)`, `k`, `!k` (and `k>1`, `k<1`), joined by
commas. Errors carry apimachinery's wording (`unable to parse requirement:
...`, `found ',', expected: identifier`).
"""

from __future__ import annotations

from minik.api.selectors.requirements import (
    DOES_NOT_EXIST,
    DOUBLE_EQUALS,
    EQUALS,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_EQUALS,
    NOT_IN,
    Requirement,
    SelectorError,
    invalid_value,
    label_key_errors,
)

_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_SYMBOLS = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GREATER_THAN,
            "<": LESS_THAN, "!": DOES_NOT_EXIST, "(": "(", ")": ")", ",": ","}
_KEYWORDS = {"in": IN, "notin": NOT_IN}
_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_IDENT, _END = "identifier", "end"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is an operator/punctuation, `identifier` or `end`."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos == len(text):
            tokens.append((_END, ""))
            return tokens
        start = pos
        if text[pos] in _SPECIAL:
            while pos < len(text) and text[pos] in _SPECIAL and text[start:pos + 1] in _SYMBOLS:
                pos += 1
            literal = text[start:pos]
            tokens.append((_SYMBOLS[literal], literal))
            continue
        while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        literal = text[start:pos]
        tokens.append((_KEYWORDS.get(literal, _IDENT), literal))


class _Parser:
    """apimachinery's label selector grammar, one method per production."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, *, values: bool = True) -> tuple[str, str]:
        return self._as_context(self.tokens[self.pos], values)

    def take(self, *, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return self._as_context(token, values)

    @staticmethod
    def _as_context(token: tuple[str, str], values: bool) -> tuple[str, str]:
        """In value position, `in` and `notin` are plain identifiers."""
        kind, literal = token
        return (_IDENT, literal) if values and kind in (IN, NOT_IN) else (kind, literal)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == _END:
                return requirements
            if kind not in (_IDENT, DOES_NOT_EXIST):
                raise SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self.take()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in (_IDENT, DOES_NOT_EXIST):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_inferred_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return Requirement.build(key, operator, [])
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return Requirement.build(key, operator, sorted(values))

    def key_and_inferred_operator(self) -> tuple[str, str]:
        operator = ""
        kind, literal = self.take()
        if kind == DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            kind, literal = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        if problems := label_key_errors(literal):
            raise SelectorError(invalid_value("<nil>", literal, problems))
        if self.peek()[0] in (_END, ",") and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def operator(self) -> str:
        kind, literal = self.take(values=False)
        if kind not in _BINARY:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY)}")
        return kind

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list in which empty items are the empty string."""
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == _IDENT:
                values.add(literal)
                following, text = self.peek()
                if following == ")":
                    return values
                if following != ",":
                    raise SelectorError(f"found '{text}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.add("")
                following, _ = self.peek()
                if following == ")":
                    values.add("")
                    return values
                if following == ",":
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_END, ","):
            return {""}
        kind, literal = self.take()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements a `labelSelector` string ANDs; SelectorError when it is malformed."""
    return _Parser(text).parse()
