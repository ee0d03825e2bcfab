"""Metric names used in a PromQL expression (python3 standard library only).

A small tokenizer, not a full PromQL parser: it skips string literals, label matchers `{...}`,
ranges and subqueries `[...]`, numbers and durations, Grafana variables (`$x`, `${x}`), keywords
and the label lists after by/without/on/ignoring/group_left/group_right, and treats an identifier
followed by `(` as a function. Whatever identifier is left is a metric name. The syntax itself is
checked by promtool (scripts/check-monitoring.sh feeds every dashboard expression to
`promtool check rules`).
"""

import re

KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
IDENT_START = re.compile(r"[A-Za-z_:]")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.]*")
VARIABLE = re.compile(r"\$(\{[^}]*\}|\w+)")


def _skip_string(expr, i):
    quote = expr[i]
    i += 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise ValueError("unterminated string literal")


def _skip_until(expr, i, closing):
    """Skips from an opening bracket at i to just after its closing one (strings inside skipped)."""
    opening = expr[i]
    depth = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening}{closing}")


def _next_non_space(expr, i):
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def metric_names(expr):
    """Returns the set of metric names referenced by a PromQL expression."""
    names = set()
    i = 0
    n = len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == "#":  # comment to end of line
            while i < n and expr[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "{":
            i = _skip_until(expr, i, "}")
        elif c == "[":
            i = _skip_until(expr, i, "]")
        elif c == "$":
            m = VARIABLE.match(expr, i)
            i = m.end() if m else i + 1
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            i = NUMBER.match(expr, i).end()
        elif IDENT_START.match(c):
            m = IDENT.match(expr, i)
            word = m.group(0)
            i = m.end()
            j = _next_non_space(expr, i)
            if word.lower() in LABEL_LIST_KEYWORDS:
                if j < n and expr[j] == "(":
                    i = _skip_until(expr, j, ")")
            elif word.lower() in KEYWORDS:
                pass
            elif j < n and expr[j] == "(":
                pass  # function or aggregation operator
            elif word in AGGREGATIONS and re.match(r"(by|without)\b", expr[j:]):
                pass  # "sum by (x) (...)"
            else:
                names.add(word)
        else:
            i += 1
    return names


GRAFANA_FUNCTIONS = re.compile(r"^\s*(label_values|query_result|label_names|metrics)\s*\((.*)\)\s*$", re.S)


def grafana_query_names(query):
    """Metric names in a Grafana templating query (label_values(expr, label), query_result(expr), ...)."""
    m = GRAFANA_FUNCTIONS.match(query)
    if not m:
        return metric_names(query)
    func, args = m.group(1), m.group(2)
    if func in ("label_names", "metrics"):
        return set()
    if func == "label_values":
        # label_values(label) or label_values(expr, label): drop the trailing label argument
        depth = 0
        cut = None
        for k, ch in enumerate(args):
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == "," and depth == 0:
                cut = k
        return metric_names(args[:cut]) if cut is not None else set()
    return metric_names(args)


def substitute_grafana_variables(expr):
    """Replaces Grafana's built-in and dashboard variables so that promtool can parse the expression."""
    replacements = {
        "$__rate_interval": "5m", "${__rate_interval}": "5m",
        "$__interval": "1m", "${__interval}": "1m",
        "$__range": "1d", "${__range}": "1d",
        "$__range_s": "86400", "$__interval_ms": "60000",
    }
    for k in sorted(replacements, key=len, reverse=True):
        expr = expr.replace(k, replacements[k])
    # any other variable is a label value inside a matcher ("$instance") - a harmless placeholder
    return VARIABLE.sub("var", expr)


if __name__ == "__main__":
    import sys

    for line in sys.stdin:
        print(sorted(metric_names(line)))
