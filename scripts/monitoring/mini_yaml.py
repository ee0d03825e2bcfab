"""A small YAML subset reader (python3 standard library only) for the monitoring files.

Supports what deploy/monitoring uses: block mappings and sequences, `- key: value` items, plain,
single- and double-quoted scalars, block scalars (`|`, `>`, with `-`/`+` chomping), flow
sequences and flow mappings of scalars (`[a, "b"]`, `{k: v}`), and `#` comments. No anchors,
tags or multi-document streams. Values stay strings (no int/bool conversion) except `[]`/`{}`.
The real parsers (promtool, amtool, Grafana) remain the authority; this is only used to read
rule metadata for extra checks.
"""

import json
import re


class YamlError(ValueError):
    pass


def _strip_comment(text):
    """Removes a trailing ` # comment` outside quotes."""
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                continue
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def _split_flow(text):
    parts, depth, quote, cur = [], 0, None, ""
    for c in text:
        if quote:
            cur += c
            if c == quote:
                quote = None
            continue
        if c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += c
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _scalar(text):
    text = text.strip()
    if not text:
        return None
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlError(f"unterminated string: {text}")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlError(f"unterminated flow sequence: {text}")
        return [_scalar(p) for p in _split_flow(text[1:-1])]
    if text.startswith("{"):
        if not text.endswith("}"):
            raise YamlError(f"unterminated flow mapping: {text}")
        out = {}
        for p in _split_flow(text[1:-1]):
            k, _, v = p.partition(":")
            out[_scalar(k)] = _scalar(v)
        return out
    return text


KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s'"#][^:#]*?)\s*:(?:\s+|$)(.*)$""")


class _Lines:
    def __init__(self, text):
        self.lines = []
        for no, raw in enumerate(text.split("\n"), 1):
            self.lines.append((no, raw))
        self.i = 0

    def peek(self):
        """Next meaningful line as (indent, content, lineno), skipping blanks and comments."""
        while self.i < len(self.lines):
            no, raw = self.lines[self.i]
            stripped = raw.strip()
            if not stripped or stripped.startswith("#") or stripped == "---":
                self.i += 1
                continue
            return len(raw) - len(raw.lstrip(" ")), raw.strip(), no
        return None


def _block_scalar(lines, indicator, parent_indent):
    style = indicator[0]
    chomp = indicator[1:2]
    body = []
    indent = None
    while lines.i < len(lines.lines):
        no, raw = lines.lines[lines.i]
        if raw.strip() == "":
            body.append("")
            lines.i += 1
            continue
        cur = len(raw) - len(raw.lstrip(" "))
        if cur <= parent_indent:
            break
        if indent is None:
            indent = cur
        if cur < indent:
            break
        body.append(raw[indent:])
        lines.i += 1
    while body and body[-1] == "":
        body.pop()
    if style == "|":
        text = "\n".join(body)
    else:
        text = ""
        for line in body:
            if line == "":
                text += "\n"
            elif text and not text.endswith("\n"):
                text += " " + line
            else:
                text += line
    if chomp == "-":
        return text
    return text + "\n"


def _value(lines, rest, indent, no):
    rest = _strip_comment(rest)
    if rest in ("|", "|-", "|+", ">", ">-", ">+"):
        return _block_scalar(lines, rest, indent)
    if rest == "":
        nxt = lines.peek()
        if nxt is None:
            return None
        n_indent, content, _ = nxt
        if n_indent > indent or (n_indent == indent and content.startswith("- ")) or (n_indent == indent and content == "-"):
            return _node(lines, n_indent)
        return None
    return _scalar(rest)


def _node(lines, indent):
    first = lines.peek()
    if first is None:
        return None
    _, content, _ = first
    if content.startswith("- ") or content == "-":
        return _sequence(lines, indent)
    return _mapping(lines, indent)


def _sequence(lines, indent):
    out = []
    while True:
        nxt = lines.peek()
        if nxt is None:
            return out
        cur, content, no = nxt
        if cur != indent or not (content.startswith("- ") or content == "-"):
            if cur > indent:
                raise YamlError(f"line {no}: unexpected indentation")
            return out
        item = content[2:] if content != "-" else ""
        item_indent = indent + 2 + (len(item) - len(item.lstrip(" ")))
        item = item.strip()
        lines.i += 1
        if item == "":
            out.append(_value(lines, "", indent, no))
        elif KEY.match(_strip_comment(item)) and not item.startswith(("[", "{")):
            # "- key: value" starts a mapping whose keys are indented like `key`
            lines.lines.insert(lines.i, (no, " " * item_indent + item))
            out.append(_mapping(lines, item_indent))
        else:
            out.append(_scalar(_strip_comment(item)))


def _mapping(lines, indent):
    out = {}
    while True:
        nxt = lines.peek()
        if nxt is None:
            return out
        cur, content, no = nxt
        if cur < indent:
            return out
        if cur > indent:
            raise YamlError(f"line {no}: unexpected indentation")
        if content.startswith("- "):
            return out
        m = KEY.match(content)
        if not m:
            raise YamlError(f"line {no}: expected 'key: value', got {content!r}")
        key = _scalar(m.group(1))
        lines.i += 1
        if key in out:
            raise YamlError(f"line {no}: duplicate key {key!r}")
        out[key] = _value(lines, m.group(2), indent, no)


def load(text):
    lines = _Lines(text)
    first = lines.peek()
    if first is None:
        return None
    value = _node(lines, first[0])
    rest = lines.peek()
    if rest is not None:
        raise YamlError(f"line {rest[2]}: could not parse {rest[1]!r}")
    return value


def load_file(path):
    with open(path, encoding="utf-8") as f:
        return load(f.read())
