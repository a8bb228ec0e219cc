"""check2junit.py - turn automake's unit test .trs/.log files into one JUnit XML report."""
import glob
import os
import sys
from xml.sax.saxutils import escape

cases = []
for d in sys.argv[1:]:
    for trs in sorted(glob.glob(os.path.join(d, "*.trs"))):
        name = os.path.basename(trs)[:-4]
        result = "PASS"
        for line in open(trs):
            if line.startswith(":test-result:"):
                result = line.split(":", 2)[2].strip()
        log = trs[:-4] + ".log"
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        cases.append((d.rstrip("/").split("/")[0] + "." + name, result, text))
failures = sum(1 for c in cases if c[1] not in ("PASS", "SKIP"))
print('<?xml version="1.0" encoding="UTF-8"?>')
print('<testsuite name="unit" tests="%d" failures="%d">' % (len(cases), failures))
for name, result, text in cases:
    print('  <testcase classname="unit" name="%s">' % escape(name))
    if result not in ("PASS", "SKIP"):
        print('    <failure message="%s">%s</failure>' % (escape(result), escape(text[-4000:])))
    print('    <system-out>%s</system-out>' % escape(text[-4000:]))
    print('  </testcase>')
print('</testsuite>')
