#!/usr/bin/env python3
"""The bench's round-trip bound (bench/bound.py) and how the table prints it
(bench/table.py): the counting rules on strace lines written here, the
arithmetic on made-up prices, and the Goals wording. No timing is measured
or asserted.

Usage: test_bound.py BENCH_DIR (the repository's bench/).
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../bench"))
import bound  # noqa: E402
import table  # noqa: E402

ROOT = "/w/tree"


def trace(*calls, start=1.0):
    """strace -ttt -y lines, one per call, a microsecond apart."""
    return "\n".join(f"{start + i * 1e-6:.6f} {c}" for i, c in enumerate(calls)) + "\n"


# tar x of one regular file with data: O_EXCL create, attributes and data, close
TAR_FILE = [
    'openat(4</w/tree>, "a.h", O_WRONLY|O_CREAT|O_EXCL|O_NOCTTY, 0600) = 5</w/tree/a.h>',
    'write(5</w/tree/a.h>, "/* a */\\n", 8) = 8',
    'utimensat(5</w/tree/a.h>, NULL, [UTIME_OMIT, {tv_sec=1, tv_nsec=0}], 0) = 0',
    'fchmod(5</w/tree/a.h>, 0644) = 0',
    'close(5</w/tree/a.h>) = 0',
]
# one sqlite commit (journal mode delete): the journal created without
# O_EXCL, two fsyncs of it, one of the database, a close after the fsync
# with no write since, the unlink
SQLITE_COMMIT = [
    'openat(AT_FDCWD</w>, "/w/tree/db-journal", O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0644) = 4</w/tree/db-journal>',
    'fchown(4</w/tree/db-journal>, 0, 0) = 0',
    'pwrite64(4</w/tree/db-journal>, "\\0\\0", 512, 0) = 512',
    'fdatasync(4</w/tree/db-journal>) = 0',
    'pwrite64(4</w/tree/db-journal>, "\\331\\325", 12, 0) = 12',
    'fdatasync(4</w/tree/db-journal>) = 0',
    'pwrite64(3</w/tree/db>, "SQLite format 3\\0"..., 4096, 0) = 4096',
    'fdatasync(3</w/tree/db>) = 0',
    'fdatasync(3</w/tree/db>) = 0',
    'close(4</w/tree/db-journal>) = 0',
    'unlink("/w/tree/db-journal") = 0',
]


class Counting(unittest.TestCase):
    def count(self, *calls):
        return bound.forced_round_trips({1: trace(*calls)}, ROOT)[0]

    def test_a_file_tar_writes_costs_two(self):
        self.assertEqual(self.count(*TAR_FILE), 2)

    def test_names_cost_one_each(self):
        self.assertEqual(self.count('mkdirat(4</w/tree>, "d", 0700) = 0', 'symlinkat("../x", 4</w/tree>, "l") = 0',
                                    'linkat(4</w/tree>, "a", 4</w/tree>, "b", 0) = 0',
                                    'renameat2(4</w/tree>, "b", 4</w/tree>, "c", RENAME_NOREPLACE) = 0',
                                    'unlinkat(4</w/tree>, "c", 0) = 0', 'rmdir("/w/tree/d") = 0'), 6)

    def test_a_sqlite_commit_costs_five(self):
        # the journal's create, the three fsyncs with writes before them, the unlink
        self.assertEqual(self.count(*SQLITE_COMMIT), 5)

    def test_a_second_commit_creates_the_journal_again(self):
        self.assertEqual(self.count(*(SQLITE_COMMIT + SQLITE_COMMIT)), 10)

    def test_opening_an_existing_name_with_o_creat_costs_nothing(self):
        self.assertEqual(self.count('openat(AT_FDCWD</w>, "/w/tree/f", O_RDONLY) = 3</w/tree/f>',
                                    'close(3</w/tree/f>) = 0',
                                    'openat(AT_FDCWD</w>, "/w/tree/f", O_RDWR|O_CREAT, 0644) = 3</w/tree/f>',
                                    'close(3</w/tree/f>) = 0'), 0)

    def test_outside_the_root_failures_and_reads_cost_nothing(self):
        self.assertEqual(self.count('openat(AT_FDCWD</w>, "/w/other", O_WRONLY|O_CREAT|O_EXCL, 0644) = 3</w/other>',
                                    'write(3</w/other>, "x", 1) = 1', 'close(3</w/other>) = 0',
                                    'mkdir("/w/tree", 0777) = -1 EEXIST (File exists)',
                                    'unlink("/w/treehouse/x") = 0',
                                    'openat(AT_FDCWD</w>, "/w/tree/f", O_RDONLY) = 3</w/tree/f>',
                                    'close(3</w/tree/f>) = 0', 'write(1</dev/pts/0>, "done", 4) = 4'), 0)

    def test_threads_count_apart_the_largest_bounds(self):
        traces = {10: trace(*TAR_FILE), 11: trace('mkdir("/w/tree/x", 0777) = 0', start=2.0)}
        self.assertEqual(bound.forced_round_trips(traces, ROOT), (2, 3))

    def test_a_write_in_one_thread_is_not_charged_to_another(self):
        traces = {10: trace('write(5</w/tree/a>, "x", 1) = 1'), 11: trace('close(5</w/tree/a>) = 0', start=2.0)}
        self.assertEqual(bound.forced_round_trips(traces, ROOT), (0, 0))


class Arithmetic(unittest.TestCase):
    def test_time_bound_adds_the_round_trips_to_fuse_share(self):
        # 2 s for passthrough_ll, 0.1 s of it the tmpfs's; 10,000 round trips of 50 us
        self.assertAlmostEqual(bound.time_bound(2.0, 0.1, 10000, 50e-6), 2.4)

    def test_time_bound_never_goes_below_the_round_trips(self):
        self.assertAlmostEqual(bound.time_bound(0.1, 0.2, 100, 1e-3), 0.1)

    def test_overlapped_stream_is_the_slower_stage(self):
        self.assertAlmostEqual(bound.overlapped_stream_bound(1000, 4000, 500), 500)
        self.assertAlmostEqual(bound.overlapped_stream_bound(1000, 4000, 5000), 1 / 0.00075)


class Wording(unittest.TestCase):
    def test_a_miss_below_the_bound_is_unreachable(self):
        self.assertEqual(table.bounds_text(0.41, 0.6, [(0.47, "under close-to-open")]),
                         "unreachable under close-to-open: bound 47%")

    def test_a_miss_above_the_bound_says_how_far(self):
        self.assertEqual(table.bounds_text(0.27, 0.8, [(0.85, "under close-to-open")]),
                         "bound under close-to-open: 85%, the result 58 points below it")

    def test_a_met_goal_shows_its_bound(self):
        self.assertEqual(table.bounds_text(0.9, 0.8, [(0.95, "x")]), "bound x: 95%")

    def test_a_result_above_its_bound_is_flagged(self):
        for value in (0.7, 0.9):  # missed, met
            self.assertEqual(table.bounds_text(value, 0.8, [(0.65, "x")]),
                             "bound x: 65%, the result above it (noise in this run: not a bound)")

    def test_several_bounds_each_judged(self):
        self.assertEqual(table.bounds_text(0.57, 0.8, [(0.62, "serial"), (1.4, "overlapped")]),
                         "unreachable serial: bound 62%; bound overlapped: 140%, the result 83 points below it")


class Rendering(unittest.TestCase):
    def test_goals_line_and_columns(self):
        records = [{"kind": "workload", "w": 8, "title": "t", "quick": False, "reps": 1,
                    "columns": [["redisfs", "redisfs"], ["passthrough", "passthrough_ll"], ["bound", "rt bound"]],
                    "ratios": [["redisfs", "passthrough", "vs pt"], ["bound", "passthrough", "bound vs pt"]]}]
        for target, value in (("redisfs", 5.0), ("passthrough", 2.0), ("bound", 4.0)):
            records.append({"kind": "result", "w": 8, "row": "tar x", "target": target, "value": value, "unit": "s",
                            "better": "lower"})
        records.append({"kind": "goal", "w": 8, "row": "tar x", "label": ">= 60%", "goal": "min", "limit": 0.6,
                        "ref_row": None, "ref_target": "passthrough", "show": "pct", "floor": False, "round_trips": 0,
                        "perf": True, "target": "redisfs", "bounds": [["bound", "under close-to-open"]]})
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
        try:
            lines, missed = table.render(table.load(f.name), {}, [])
        finally:
            os.unlink(f.name)
        self.assertEqual(missed, ["8. tar x"])
        self.assertIn("  [MISSED] 8. tar x: >= 60%: 40%; unreachable under close-to-open: bound 50%", lines)
        header = next(line for line in lines if "rt bound" in line)
        self.assertIn("bound vs pt", header)
        row = next(line for line in lines if line.startswith("  tar x"))
        self.assertIn("50%", row)


if __name__ == "__main__":
    unittest.main()
