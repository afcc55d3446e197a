"""The constrained format in which values cross out of a sandbox: builtin data only, size- and depth-capped.

`encode` runs inside the sandbox on whatever the candidate returned; `decode` runs in the parent (or in the
judge sandbox) and only ever builds builtin objects (None, bool, int, float, complex, str, bytes, bytearray,
list, tuple, dict, set, frozenset), so no code of the candidate's runs where its answers are compared.
Subclasses of those types (a Counter, an OrderedDict, a namedtuple, a numpy float64) travel as their base
type's value, read through the base type's own methods; anything else is refused (`Unencodable`).

JSON with tags: None, bools, strings, ints below 2**63 and floats (NaN and infinities included) are JSON
values; lists are JSON arrays; everything else is a one-key object: {"I": hex} big int, {"c": [re, im]},
{"t": [...]} tuple, {"d": [[k, v], ...]} dict (in order), {"s": [...]} set, {"F": [...]} frozenset,
{"b": hex} bytes, {"B": hex} bytearray.
"""
import json

MAX_DEPTH = 64
MAX_ITEMS = 200_000
_SMALL_INT = 1 << 63


class Unencodable(ValueError):
    """A value outside the format: the message names its type (never calls the value's own methods)."""


class Malformed(ValueError):
    """Bytes that are not a value in this format."""


def _type_name(value) -> str:
    return type.__dict__["__qualname__"].__get__(type(value), type)


def encode(value) -> str:
    """The JSON text of `value`; raises Unencodable for anything but builtin data (or too big, too deep)."""
    budget = [MAX_ITEMS]

    def walk(v, depth):
        if depth > MAX_DEPTH:
            raise Unencodable(f"nested deeper than {MAX_DEPTH}")
        budget[0] -= 1
        if budget[0] < 0:
            raise Unencodable(f"more than {MAX_ITEMS} items")
        kind = type(v)
        if v is None or kind is bool:
            return v
        if isinstance(v, int):
            number = int.__index__(v) if kind is not int else v
            return number if -_SMALL_INT < number < _SMALL_INT else {"I": int.__format__(number, "x")}
        if isinstance(v, float):
            return float.__float__(v)
        if isinstance(v, complex):
            return {"c": [complex.real.__get__(v), complex.imag.__get__(v)]}
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, bytes):
            return {"b": bytes.hex(v)}
        if isinstance(v, bytearray):
            return {"B": bytearray.hex(v)}
        if isinstance(v, list):
            return [walk(item, depth + 1) for item in list.__iter__(v)]
        if isinstance(v, tuple):
            return {"t": [walk(item, depth + 1) for item in tuple.__iter__(v)]}
        if isinstance(v, dict):
            return {"d": [[walk(k, depth + 1), walk(item, depth + 1)] for k, item in dict.items(v)]}
        if isinstance(v, frozenset):
            return {"F": [walk(item, depth + 1) for item in frozenset.__iter__(v)]}
        if isinstance(v, set):
            return {"s": [walk(item, depth + 1) for item in set.__iter__(v)]}
        raise Unencodable(f"a {_type_name(v)} object is not builtin data")

    return json.dumps(walk(value, 0), separators=(",", ":"))


def decode(text: str | bytes):
    """The builtin value that `text` encodes; raises Malformed for anything else."""
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise Malformed(f"not JSON: {e}") from None
    return decode_tree(tree)


def decode_tree(tree):
    """`decode` for text already parsed by json.loads (e.g. a value inside a larger JSON message)."""
    budget = [MAX_ITEMS]

    def walk(node, depth):
        if depth > MAX_DEPTH:
            raise Malformed(f"nested deeper than {MAX_DEPTH}")
        budget[0] -= 1
        if budget[0] < 0:
            raise Malformed(f"more than {MAX_ITEMS} items")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [walk(item, depth + 1) for item in node]
        if type(node) is not dict or len(node) != 1:
            raise Malformed(f"unexpected {type(node).__name__} node")
        (tag, body), = node.items()
        try:
            if tag == "I" and type(body) is str:
                return int(body, 16)
            if tag == "c" and type(body) is list and len(body) == 2:
                return complex(float(body[0]), float(body[1]))
            if tag in ("b", "B") and type(body) is str:
                return (bytes if tag == "b" else bytearray).fromhex(body)
            if type(body) is list:
                if tag == "t":
                    return tuple(walk(item, depth + 1) for item in body)
                if tag == "s":
                    return {walk(item, depth + 1) for item in body}
                if tag == "F":
                    return frozenset(walk(item, depth + 1) for item in body)
                if tag == "d" and all(type(pair) is list and len(pair) == 2 for pair in body):
                    return {walk(k, depth + 1): walk(v, depth + 1) for k, v in body}
        except (TypeError, ValueError) as e:  # unhashable keys, bad hex, ...
            raise Malformed(f"bad {tag!r} node: {e}") from None
        raise Malformed(f"unknown tag {tag!r}")

    return walk(tree, 0)
