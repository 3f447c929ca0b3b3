"""``avain eval report``: the figures as an HTML page with charts (matplotlib) and a JSON
twin. Suppressed cells (fewer than five clients) are shown as "n < 5" in tables and left
out of charts, with the reason written on the chart."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from avain.core import outfiles  # noqa: E402

COLOURS = {"hb": "#1f6f8b", "control": "#b0b0b0"}
LABELS = {"hb": "HB", "control": "control"}


def _bars(ax, labels: list[str], series: dict[str, list[dict | None]], *, ylabel: str) -> int:
    """Grouped bars with 95 % intervals; a None or suppressed value is left out and named.
    Returns how many bars were drawn."""
    width = 0.8 / max(1, len(series))
    drawn = 0
    for k, (arm, values) in enumerate(series.items()):
        for i, v in enumerate(values):
            x = i + (k - (len(series) - 1) / 2) * width
            if not v or v.get("mean") is None:
                ax.text(x, 0, "n < 5" if v and v.get("suppressed") else "–", ha="center", va="bottom", fontsize=7,
                        color="#666")
                continue
            low, high = v["ci95"] or (v["mean"], v["mean"])
            ax.bar(x, v["mean"], width, color=COLOURS.get(arm, "#555"), label=LABELS.get(arm, arm) if i == 0 else None,
                   yerr=[[v["mean"] - low], [high - v["mean"]]], capsize=3)
            drawn += 1
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="#333", linewidth=0.6)
    if drawn:
        ax.legend(fontsize=8)
    return drawn


def _save(fig, out: Path, name: str) -> str:
    path = out / "charts" / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"charts/{name}.png"


def charts(data: dict[str, Any], out: Path,
           progress: Callable[[int, int], None] | None = None) -> dict[str, list[dict[str, str]]]:
    """Draw every chart; returns, per pilot, the charts' titles and files. ``progress(done,
    total)`` after each pilot's charts."""
    (out / "charts").mkdir(parents=True, exist_ok=True)
    made: dict[str, list[dict[str, str]]] = {}
    for done, p in enumerate(data["pilots"]):
        if progress:
            progress(done, len(data["pilots"]))
        pid, mine = p["pilot"], []
        by = {(c["group"], c["arm"]): c for c in p["cells"]}
        groups = ["*", *p["groups"]]
        labels = ["all groups" if g == "*" else g for g in groups]
        for key, title, unit, arms in [
            ("cost_per_client_eur", "Cost per client", "€ per client", ("hb", "control")),
            ("worker_minutes_per_client", "Worker time per client", "minutes per client", ("hb", "control")),
            ("budget_use_share", "Budget use (spent / granted)", "share of the budget", ("hb",)),
        ]:
            fig, ax = plt.subplots(figsize=(6.4, 3.4))
            _bars(ax, labels, {arm: [by[(g, arm)][key] for g in groups] for arm in arms}, ylabel=unit)
            ax.set_title(f"{pid}: {title}", fontsize=10)
            mine.append({"title": title, "file": _save(fig, out, f"{pid}-{key}")})
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        approved = [by[(g, "hb")]["proposals"]["approved"] for g in groups]
        rejected = [by[(g, "hb")]["proposals"]["rejected"] for g in groups]
        xs = range(len(groups))
        ax.bar(xs, [a or 0 for a in approved], color=COLOURS["hb"], label="approved")
        ax.bar(xs, [r or 0 for r in rejected], bottom=[a or 0 for a in approved], color="#d98c3a", label="rejected")
        for i, a in enumerate(approved):
            if a is None:
                ax.text(i, 0, "n < 5", ha="center", va="bottom", fontsize=7, color="#666")
        ax.set_xticks(list(xs), labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("proposals")
        ax.legend(fontsize=8)
        ax.set_title(f"{pid}: Proposals approved and rejected", fontsize=10)
        mine.append({"title": "Proposals approved and rejected", "file": _save(fig, out, f"{pid}-proposals")})
        instruments = sorted({o["instrument"] for o in p["outcomes"]})
        for name in instruments:
            rows = [o for o in p["outcomes"] if o["instrument"] == name and o["group"] == "*"]
            if not rows:
                continue
            fig, ax = plt.subplots(figsize=(6.4, 3.6))
            _bars(ax, [o["scale"] for o in rows], {arm: [o[arm]["change"] for o in rows] for arm in ("hb", "control")},
                  ylabel="mean change, end − start")
            provisional = " (provisional scoring)" if rows[0]["provisional"] else ""
            ax.set_title(f"{pid}: {name}, change from start to end{provisional}", fontsize=10)
            mine.append({"title": f"{name}: change from start to end", "file": _save(fig, out, f"{pid}-{name}")})
        for family in sorted({e["family"] for e in p["end_levels"]}):
            rows = [e for e in p["end_levels"] if e["family"] == family and e["group"] == "*"]
            fig, ax = plt.subplots(figsize=(6.4, 3.4))
            _bars(ax, [e["scale"] for e in rows], {arm: [e[arm] for e in rows] for arm in ("hb", "control")},
                  ylabel="mean at the end")
            ax.set_title(f"{pid}: {family}, level at the end", fontsize=10)
            mine.append({"title": f"{family}: level at the end", "file": _save(fig, out, f"{pid}-{family}-end")})
        made[pid] = mine
    return made


def _cell(v: Any) -> str:
    if isinstance(v, dict):
        if v.get("suppressed"):
            return "n < 5"
        if v.get("mean") is None:
            return "–"
        ci = v.get("ci95")
        return f"{v['mean']}" + (f" <small>({ci[0]} … {ci[1]}), n = {v['n']}</small>" if ci else "")
    return "–" if v is None else html.escape(str(v))


class Markup(str):
    """HTML that goes into a cell as it is (already escaped)."""


def _group(group: str) -> str:
    return "all groups" if group == "*" else group


def _table(head: list[str], rows) -> str:
    """An HTML table; every cell through :func:`_cell` (figures with their interval and n,
    "n < 5" where suppressed), escaped unless it is :class:`Markup`."""
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{v if isinstance(v, Markup) else _cell(v)}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def page(data: dict[str, Any], made: dict[str, list[dict[str, str]]]) -> str:
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><meta charset='utf-8'><title>avain evaluation report</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:.3em .5em;"
             "text-align:right}th{background:#eef}td:first-child,th:first-child{text-align:left}"
             "small{color:#666}img{max-width:100%}</style>",
             "<h1>Evaluation report</h1>",
             f"<p>As of {esc(data['as_of'])}. {esc(data['note'])}</p>"]
    for p in data["pilots"]:
        parts.append(f"<h2>{esc(p['pilot'])}: {esc(p['name'])}</h2>")
        parts.append(_table(
            ["group", "arm", "clients", "cost per client, €", "worker minutes per client",
             "client minutes per client", "budget use", "proposals approved", "rejected"],
            ([_group(c["group"]), c["arm"], "n < 5" if c["suppressed"] else c["clients"], c["cost_per_client_eur"],
              c["worker_minutes_per_client"], c["client_minutes_per_client"], c["budget_use_share"],
              c["proposals"]["approved"], c["proposals"]["rejected"]] for c in p["cells"])))
        if p["outcomes"]:
            parts.append(_table(
                ["instrument", "scale", "group", "HB change", "control change", "difference"],
                ([Markup(esc(o["instrument"]) + (" <small>(provisional scoring)</small>" if o["provisional"] else "")),
                  o["scale"], _group(o["group"]), o["hb"]["change"], o["control"]["change"], o["difference"]]
                 for o in p["outcomes"])))
        if p["end_levels"]:
            parts.append(_table(["at the end", "scale", "group", "HB", "control", "difference"],
                                ([e["family"], e["scale"], _group(e["group"]), e["hb"], e["control"], e["difference"]]
                                 for e in p["end_levels"])))
        ce = [r for r in p["cost_effectiveness"] if r["group"] == "*"]
        if ce:
            parts.append(_table(["cost-effectiveness (all groups)", "scale", "cost difference, €",
                                 "effect difference", "quadrant", "€ per scale point"],
                                ([r["instrument"], r["scale"], r["cost_difference_eur"], r["effect_difference"],
                                  r["quadrant"], r["eur_per_scale_point"]] for r in ce)))
        if p["unknown_instruments"]:
            parts.append(f"<p><strong>Not in this report:</strong> the pilot names instruments no loaded plugin "
                         f"registers: {esc(', '.join(p['unknown_instruments']))}.</p>")
        d = p["dialogue"]
        if d["suppressed"]:
            parts.append("<p>Dialogue: fewer than five clients asked anything (n &lt; 5).</p>")
        elif d["questions"]:
            share = d["share_by_next_working_day"]
            parts.append(f"<p>Dialogue: {d['questions']} client questions, "
                         f"{'–' if share is None else f'{share:.0%}'} answered by the next working day, median "
                         f"{d['median_hours_to_answer']} h.</p>")
        for ch in made.get(p["pilot"], []):
            parts.append(f"<figure><img src='{esc(ch['file'])}' alt='{esc(ch['title'])}'>"
                         f"<figcaption>{esc(ch['title'])}</figcaption></figure>")
    parts.append("</html>")
    return "\n".join(parts)


def write(data: dict[str, Any], out: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """report.html, report.json and charts/*.png in ``out`` (``progress`` as the charts are drawn):
    written into a private folder and moved into place, never through a symbolic link."""
    with outfiles.staged(out) as work:
        made = charts(data, work, progress)
        if progress:
            progress(len(data["pilots"]), len(data["pilots"]))
        data = {**data, "charts": made}
        (work / "report.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (work / "report.html").write_text(page(data, made), encoding="utf-8")
    return {"html": str(out / "report.html"), "json": str(out / "report.json"),
            "charts": sum(len(v) for v in made.values()), "pilots": [p["pilot"] for p in data["pilots"]]}
