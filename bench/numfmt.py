"""How bench/run prints a number: about three significant digits, with
thousands separators from 1,000 up. Shared by the workloads' log lines
(benchlib.py) and the table (table.py)."""


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"
