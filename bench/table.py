#!/usr/bin/env python3
"""The table printer of bench/run.

Reads the records the workloads wrote (results.jsonl, see benchlib.py) and
the machine description, prints one table (medians per row and target, the
ratios, the spread of the redisfs figures), the goals met or missed (with
the bounds a goal names: bounds_text), and the notes; with --markdown FILE
it also appends the same as a dated section.

Ratios are redisfs's performance as a percentage of the baseline's, whatever
the unit: value/baseline for rates, baseline/value for times, so a higher
percentage is better on every row.
"""
import argparse
import json
import statistics
import sys
import time

from numfmt import fmt

TARGETS = [("redisfs", "redisfs"), ("passthrough", "passthrough_ll"), ("tmpfs", "tmpfs"), ("raw", "raw redis"),
           ("floor", "fuse floor")]
RATIOS = [("passthrough", "vs passthrough"), ("tmpfs", "vs tmpfs"), ("raw", "vs raw"), ("floor", "vs floor")]


def _pct(r):
    return "-" if r is None else f"{r * 100:.0f}%" if r < 10 else f"{r:.0f}x"


def load(path):
    workloads = {}  # w -> {"title", "rows": {row: {...}}, "goals": [], "notes": []}
    order = []
    current = None
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            w = rec.get("w")
            if rec["kind"] == "workload":
                if w not in workloads:
                    workloads[w] = {"title": rec["title"], "rows": {}, "goals": [], "notes": [],
                                    "columns": rec.get("columns"), "ratios": rec.get("ratios")}
                    order.append(w)
                current = w
                continue
            wl = workloads.setdefault(w if w is not None else current,
                                      {"title": "?", "rows": {}, "goals": [], "notes": []})
            if rec["kind"] == "result":
                row = wl["rows"].setdefault(rec["row"], {"unit": rec["unit"], "better": rec["better"], "values": {}})
                row["values"].setdefault(rec["target"], []).append(rec["value"])
            elif rec["kind"] == "goal":
                wl["goals"].append(rec)
            elif rec["kind"] == "note":
                wl["notes"].append(rec["text"])
    return [(w, workloads[w]) for w in order]


def _median(row, target):
    values = row["values"].get(target) if row else None
    return statistics.median(values) if values else None


def _ratio(row, base, target="redisfs"):
    fs, ref = _median(row, target), _median(row, base)
    if fs is None or ref is None or fs == 0 or ref == 0:
        return None
    return fs / ref if row["better"] == "higher" else ref / fs


def _spread(row, targets=("redisfs",)):
    """(max - min) / median of the repetitions, the largest over targets."""
    spreads = []
    for target in targets:
        values = row["values"].get(target) or []
        m = statistics.median(values) if len(values) >= 2 else 0
        if m:
            spreads.append((max(values) - min(values)) / m)
    return f"{max(spreads) * 100:.0f}%" if spreads else "-"


def evaluate(wl, goal, target="redisfs"):
    row = wl["rows"].get(goal["row"])
    value = _median(row, target)
    if value is None:
        return None, "no data"
    if goal.get("perf"):
        value = _ratio(row, goal["ref_target"], target)
        if value is None:
            return None, "no baseline"
    elif goal["ref_row"]:
        ref = _median(wl["rows"].get(goal["ref_row"]), goal["ref_target"])
        if not ref:
            return None, "no baseline"
        value = value / ref
    ok = value >= goal["limit"] if goal["goal"] == "min" else value <= goal["limit"]
    if goal["show"] == "pct":
        shown = f"{value * 100:.0f}%"
    elif goal["show"] == "x":
        shown = f"{value:.2f}x"
    else:
        shown = f"{fmt(value)} {row['unit']}"
    return ok, shown


def _round_trip_bound(wl, goal):
    """The best ratio to the raw rate (one round trip per op) of an op that
    costs the floor's time plus goal["round_trips"] raw round trips."""
    n = goal.get("round_trips") or 0
    row = wl["rows"].get(goal["row"])
    ref = wl["rows"].get(goal["ref_row"] or goal["row"])
    floor, raw = _median(row, "floor"), _median(ref, goal["ref_target"])
    if not n or not floor or not raw:
        return None
    return (1 / raw) / (1 / floor + n / raw)


def bounds_text(value, limit, bounds):
    """The Goals line's words on the bounds of a "min" goal: value, the
    result (a ratio, None without one); limit, the goal's; bounds, [(ratio,
    label)] (ratio: the bound's, None without one). A missed goal whose
    bound is below the limit is unreachable under that bound's semantics;
    otherwise the bound is shown with how far the result is from it. A
    result above its bound is flagged: the bound did not hold in that run."""
    parts = []
    for ratio, label in bounds:
        if ratio is None:
            continue
        if value is not None and value > ratio:
            parts.append(f"bound {label}: {_pct(ratio)}, the result above it (noise in this run: not a bound)")
        elif value is None or value >= limit:
            parts.append(f"bound {label}: {_pct(ratio)}")
        elif ratio < limit:
            parts.append(f"unreachable {label}: bound {_pct(ratio)}")
        else:
            parts.append(f"bound {label}: {_pct(ratio)}, the result {(ratio - value) * 100:.0f} points below it")
    return "; ".join(parts)


def _goal_bounds(wl, goal, target):
    """bounds_text() of a goal that names bounds (benchlib.goal), "" else."""
    if not goal.get("bounds") or goal["goal"] != "min" or not goal.get("perf"):
        return ""
    row = wl["rows"].get(goal["row"])
    value = _ratio(row, goal["ref_target"], target)
    return bounds_text(value, goal["limit"], [(_ratio(row, goal["ref_target"], t), label)
                                              for t, label in goal["bounds"]])


def _width(header):
    return max(12, len(header) + 2)


def render(workloads, machine, header):
    out = []
    for line in header:
        out.append(line)
    out.append("")
    name_w = max([len(r) + 2 for _, wl in workloads for r in wl["rows"]] + [40])
    shown = None
    for w, wl in workloads:
        # the columns: the usual ones, or the workload's own (see benchlib.begin)
        columns = wl.get("columns") or TARGETS
        ratios = wl.get("ratios") if wl.get("columns") else [("redisfs", b, h) for b, h in RATIOS]
        if (columns, ratios) != shown:
            if shown is not None:
                out.append("")
            cols = f"{'':<{name_w}} {'unit':<7}" + "".join(f"{h:>{_width(h)}}" for _, h in columns) + \
                "".join(f"{h:>{max(9, len(h) + 2)}}" for _, _, h in ratios) + f"{'spread':>8}"
            out.append(cols)
            out.append("-" * len(cols))
            shown = (columns, ratios)
        out.append(f"{w}. {wl['title']}")
        spread_of = [t for t, _ in columns] if wl.get("columns") else ["redisfs"]
        for name, row in wl["rows"].items():
            cells = "".join(f"{fmt(_median(row, t)):>{_width(h)}}" for t, h in columns)
            cells += "".join(f"{_pct(_ratio(row, b, t)):>{max(9, len(h) + 2)}}" for t, b, h in ratios)
            out.append(f"  {name:<{name_w - 2}} {row['unit']:<7}{cells}{_spread(row, spread_of):>8}")
    out.append("")
    out.append("Goals (reported, never asserted):")
    missed = []
    for w, wl in workloads:
        for g in wl["goals"]:
            ok, shown = evaluate(wl, g, g.get("target") or "redisfs")
            verdict = "n/a" if ok is None else "met" if ok else "MISSED"
            if g.get("floor"):
                floor_ok, floor_shown = evaluate(wl, g, "floor")
                if floor_ok is not None:
                    shown += f" (the FUSE floor itself: {floor_shown}, {'met' if floor_ok else 'missed'})"
            bound = _round_trip_bound(wl, g)
            if bound is not None:
                trips = "round trip" if g["round_trips"] == 1 else "round trips"
                shown += (f"; at most {bound * 100:.0f}% for anything that costs the FUSE floor plus "
                          f"{g['round_trips']} server {trips}")
            words = _goal_bounds(wl, g, g.get("target") or "redisfs")
            if words:
                shown += f"; {words}"
            out.append(f"  [{verdict:>6}] {w}. {g['row']}: {g['label']}: {shown}")
            if ok is False:
                missed.append(f"{w}. {g['row']}")
    if not any(wl["goals"] for _, wl in workloads):
        out.append("  (none in the selected workloads)")
    notes = [(w, n) for w, wl in workloads for n in wl["notes"]]
    if notes:
        out.append("")
        out.append("Notes:")
        for w, n in notes:
            out.append(f"  {w}. {n}")
    return out, missed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--machine", required=True, help="JSON file written by bench/run")
    ap.add_argument("--markdown", help="append a dated section to this file")
    args = ap.parse_args()

    machine = json.load(open(args.machine))
    workloads = load(args.results)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(machine.get("started", time.time())))
    mode = "quick run (smaller sizes)" if machine.get("quick") else "full run"
    header = [
        f"redisfs benchmark, {when}, {mode}: median of {machine['reps']} repetition(s)",
        f"command:  {machine['command']}  (took {machine.get('elapsed', '?')} s)",
        f"machine:  {machine['cores']} cores ({machine['cpu']}), {machine['memory']} RAM, kernel {machine['kernel']}; "
        f"load average {machine.get('load_start', '?')} at the start, {machine.get('load_end', '?')} at the end",
        f"software: {machine['redis']}, {machine['fio']}, {machine['redisfs']}",
        f"redis:    {machine['server']}",
        f"redisfs:  {machine['mount']}",
        f"tmpfs:    {machine['tmpfs']}",
        f"passthrough_ll: {machine.get('passthrough', '?')}",
        "ratios:   redisfs performance as % of the baseline (rates: fs/base, times: base/fs; higher is better);",
        "          spread: (max - min) / median of the redisfs repetitions (the largest over the columns where a",
        "          workload has its own, e.g. 7)",
    ]
    lines, missed = render(workloads, machine, header)
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"\n## {when}: {mode}\n\n")
            f.write(f"Command: `{machine['command']}`\n\n")
            f.write("```text\n" + "\n".join(lines) + "\n```\n")
            if missed:
                f.write("\nMissed goals: " + "; ".join(missed) + ".\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
