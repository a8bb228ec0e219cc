"""Meta-test, run last: every route of fcgi/routes.c was called by this suite with a success answer and with
an error answer (each error already checked for the JSON shape by psapi.Api.call)."""
import os
import re

import pytest

import psapi


def parse_routes():
    src = open(os.path.join(psapi.ROOT, "fcgi", "routes.c")).read()
    macros = {}
    for name, body in re.findall(r'#define\s+(\w+)\s+(.+)', src):
        macros[name] = body
    def expand(expr):
        out = ""
        for tok in re.findall(r'"[^"]*"|\w+', expr):
            if tok.startswith('"'):
                out += tok[1:-1]
            else:
                out += expand(macros[tok])
        return out
    routes = []
    for method, expr in re.findall(r'\{"(\w+)",\s*((?:\w+\s*)?"[^"]*"(?:\s*\w+)?|\w+),\s*AUTH_', src):
        routes.append((method, expand(expr)))
    return routes


def match(pattern, segs):
    pat = pattern.strip("/").split("/")
    if len(pat) != len(segs):
        return False
    for p, s in zip(pat, segs):
        if p.startswith(":"):
            continue
        if s not in p.split("|"):
            return False
    return True


def route_of(routes, method, path):
    segs = [s for s in path.strip("/").split("/")]
    for m, pattern in routes:
        if match(pattern, segs) and m == method:
            return (m, pattern)
    return None


def test_route_table_parses():
    routes = parse_routes()
    assert len(routes) >= 30
    assert ("PATCH", "/api/stacks/:org/:project/:stack/update|updates/:update/checkpoint") in routes


def test_every_route_was_exercised(request):
    files = {os.path.basename(str(item.fspath)) for item in request.session.items}
    mine = {f for f in os.listdir(os.path.dirname(__file__)) if f.startswith("test_") and f.endswith(".py")}
    if not mine <= files:
        pytest.skip("only meaningful when the whole integration suite runs")
    routes = parse_routes()
    seen = {r: set() for r in routes}
    for method, path, status in psapi.CALLS:
        r = route_of(routes, method, path)
        if r is not None:
            seen[r].add(status)
    missing_ok = [r for r, st in seen.items() if not any(200 <= s < 300 for s in st)]
    # /healthz and /metrics have no error answer; /readyz's is 503 (what is not ready).
    no_error = {("GET", "/healthz"), ("GET", "/metrics")}
    missing_err = [r for r, st in seen.items() if r not in no_error and
                   not any(400 <= s < 500 or (r == ("GET", "/readyz") and s == 503) for s in st)]
    assert not missing_ok, "routes never answered with success: %s" % missing_ok
    assert not missing_err, "routes never answered with an error: %s" % missing_err
