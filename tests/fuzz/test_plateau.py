#!/usr/bin/env python3
"""The plateau rule of tests/fuzz/plateau.py on made-up libFuzzer coverage
reports (-print_coverage=1): edges counted per function and line, edges
that come and go between replays neither counted nor called new, the
harness left out.  Run by `meson test` (suite fuzz)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plateau  # noqa: E402

ROOT = "/src/slorag"
B = ROOT + "/build-fuzz-http-undefined/.."  # how the report names files


def report(funcs):
    """funcs: [(name, file, start, total edges, [uncovered lines] or None for an unreached function)]."""
    out = ["INFO: whatever libFuzzer says first", "COVERAGE:"]
    for name, f, start, total, unc in funcs:
        if unc is None:
            out.append(f"UNCOVERED_FUNC: hits: 0 edges: 0/{total} {name} {B}/{f}:{start}")
            continue
        out.append(f"COVERED_FUNC: hits: 7 edges: {total - len(unc)}/{total} {name} {B}/{f}:{start}")
        out += [f"  UNCOVERED_PC: {B}/{f}:{line}" for line in unc]
    return "\n".join(out) + "\n"


def reach(*reports):
    return plateau.reach([plateau.coverage_of(r, ROOT) for r in reports])


HARNESS = ("check_replies", "tests/fuzz/fuzz-http.c", 600, 10, [601, 602])


class PlateauRule(unittest.TestCase):
    def test_counts_leave_out_the_harness(self):
        r = report([("a", "x.c", 1, 5, [2, 2]), ("b", "y.c", 10, 4, None), HARNESS])
        rc = reach(r, r)
        self.assertEqual(plateau.counts(rc), (3, 3))
        self.assertNotIn(("check_replies", "tests/fuzz/fuzz-http.c:600"), rc)

    def test_a_flaky_edge_is_in_union_not_stable(self):
        one = report([("a", "x.c", 1, 5, [2, 3])])
        two = report([("a", "x.c", 1, 5, [2])])  # line 3 reached this time
        self.assertEqual(plateau.counts(reach(one, two)), (3, 4))
        # reached once at half time, in every replay at the end: not new
        self.assertEqual(plateau.new_edges(reach(one, two), reach(two, two)), [])
        # reached in no half-time replay, in every replay at the end: new
        self.assertEqual(plateau.new_edges(reach(one, one), reach(two, two)), [("a", "x.c:1", "x.c:3", 1)])
        # reached in only some replays at the end: not new (not reproducible)
        self.assertEqual(plateau.new_edges(reach(one, one), reach(one, two)), [])

    def test_two_edges_on_one_line(self):
        half = report([("a", "x.c", 1, 6, [4, 4, 4])])
        end = report([("a", "x.c", 1, 6, [4])])
        self.assertEqual(plateau.new_edges(reach(half), reach(end, end)), [("a", "x.c:1", "x.c:4", 2)])

    def test_a_function_first_reached_late(self):
        half = report([("a", "x.c", 1, 5, []), ("b", "y.c", 10, 4, None)])
        end = report([("a", "x.c", 1, 5, []), ("b", "y.c", 10, 4, [12])])
        self.assertEqual(plateau.new_edges(reach(half, half), reach(end, end)), [("b", "y.c:10", None, 3)])
        # reached in one replay of two at the end: not reproducible yet
        self.assertEqual(plateau.new_edges(reach(half, half), reach(end, half)), [])
        # new harness edges never count
        h_half = report([HARNESS])
        h_end = report([HARNESS[:4] + ([],)])
        self.assertEqual(plateau.new_edges(reach(h_half), reach(h_end)), [])

    def test_nothing_new(self):
        r = report([("a", "x.c", 1, 5, [2]), ("b", "y.c", 10, 4, None)])
        self.assertEqual(plateau.new_edges(reach(r, r, r), reach(r, r, r)), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
