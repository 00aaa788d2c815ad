#!/usr/bin/env python3
"""Sums test cases over meson test logs and prints the closing line
`N passed, N failed, N skipped`.

Each test program speaks TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP), so a
case is one `ok`/`not ok` line.  A program that fails without a failing
case (a crash or a leak report at exit, a timeout) counts as one more
failure; a missing log (the build failed) counts as one failure.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b")


SKIP = re.compile(r"#\s*SKIP", re.IGNORECASE)


def summarise(path):
    passed = failed = skipped = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        print(f"{path}: missing (build failed?)")
        return 0, 1, 0
    for line in lines:
        t = json.loads(line)
        ok_cases = bad_cases = skip_cases = 0
        for out in (t.get("stdout") or "").splitlines():
            m = TAP.match(out)  # cmocka's "# ok - group" line is a comment
            if m:
                if SKIP.search(out):
                    skip_cases += 1
                elif m.group(1) == "ok":
                    ok_cases += 1
                else:
                    bad_cases += 1
        if t["result"] == "SKIP":
            ok_cases, bad_cases, skip_cases = 0, 0, max(skip_cases, 1)
        elif ok_cases + bad_cases + skip_cases == 0:
            ok_cases, bad_cases = (1, 0) if t["result"] == "OK" else (0, 1)
        elif t["result"] not in ("OK", "EXPECTEDFAIL") and bad_cases == 0:
            bad_cases = 1
        passed += ok_cases
        failed += bad_cases
        skipped += skip_cases
    return passed, failed, skipped


def main():
    total_p = total_f = total_s = 0
    for path in sys.argv[1:]:
        p, f, s = summarise(path)
        print(f"{path}: {p} passed, {f} failed, {s} skipped")
        total_p += p
        total_f += f
        total_s += s
    print(f"{total_p} passed, {total_f} failed, {total_s} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
