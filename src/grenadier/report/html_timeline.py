"""The timeline of report.html: one bar per step, one lane per service with its events.

An SVG drawn here, not by a script, so the page needs no network and no JavaScript library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grenadier.report.html_data import esc, num, text_of

LABEL_W, CHART_R, ROW_H, TOP = 190.0, 930.0, 22, 30
TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
ENDS = ("stop", "crash", "exited")  # "kill" is followed by the stop or crash it caused
CROSSES = ("crash", "kill", "timeout")


@dataclass(frozen=True)
class _Scale:
    t0: float
    t1: float

    def x(self, t: float) -> float:
        return LABEL_W + (t - self.t0) / max(self.t1 - self.t0, 1e-6) * (CHART_R - LABEL_W)


def _axis(scale: _Scale, height: float) -> list[str]:
    total = scale.t1 - scale.t0
    tick = next((t for t in TICKS if total / t <= 10), TICKS[-1])
    out, n = [], 0
    while n * tick <= total:
        x = scale.x(scale.t0 + n * tick)
        out += [f'<line class="grid" x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{height}"/>',
                f'<text class="axis" x="{x:.1f}" y="{TOP - 12}" text-anchor="middle">'
                f"{n * tick} s</text>"]
        n += 1
    return out


def _step_row(step: dict[str, Any], y: float, scale: _Scale) -> list[str]:
    name, status = text_of(step, "name"), text_of(step, "status")
    start, dur = num(step, "started_at"), num(step, "duration")
    out = [f'<text class="lbl" x="8" y="{y + 15}">{esc(name)}</text>']
    if start <= 0:
        return [*out, f'<text class="axis" x="{LABEL_W}" y="{y + 15}">no timing recorded</text>']
    x0, x1 = scale.x(start), scale.x(start + dur)
    width = max(x1 - x0, 2.0)
    tip = f"{name}: {status}, {dur:.1f} s from +{start - scale.t0:.1f} s"
    label_x, anchor = (x0 + width + 4, "start") if x0 + width < CHART_R - 40 else (x0 - 4, "end")
    return [*out, f'<rect class="bar-{esc(status)}" x="{x0:.1f}" y="{y + 4}" width="{width:.1f}" '
            f'height="{ROW_H - 8}" rx="2"><title>{esc(tip)}</title></rect>',
            f'<text x="{label_x:.1f}" y="{y + 15}" text-anchor="{anchor}">{dur:.1f} s</text>']


def _marker(event: dict[str, Any], y: float, scale: _Scale) -> str:
    kind, at = text_of(event, "event"), num(event, "at")
    x, cy = scale.x(at), y + ROW_H / 2
    tip = esc(f"{text_of(event, 'service')} {kind} at +{at - scale.t0:.1f} s "
              f"({time.strftime('%H:%M:%S', time.localtime(at))}): {text_of(event, 'detail')}")
    if kind in CROSSES:
        return (f'<path class="ev-{esc(kind)}" d="M{x - 5:.1f},{cy - 5:.1f}l10,10m0,-10l-10,10">'
                f"<title>{tip}</title></path>")
    return f'<circle class="ev-{esc(kind)}" cx="{x:.1f}" cy="{cy:.1f}" r="4.5"><title>{tip}' \
           "</title></circle>"


def _service_row(name: str, events: list[dict[str, Any]], y: float, scale: _Scale,
                 log: str | None) -> list[str]:
    label = f'<text class="lbl" x="8" y="{y + 15}">{esc(name)}</text>'
    out = [f'<a href="{esc(log)}">{label}</a>' if log else label]
    started: float | None = None
    for event in events:
        kind, at = text_of(event, "event"), num(event, "at")
        if kind == "start":
            started = at
        elif kind in ENDS and started is not None:
            out.append(f'<rect class="svc" x="{scale.x(started):.1f}" y="{y + 8}" '
                       f'width="{max(scale.x(at) - scale.x(started), 1):.1f}" height="6"/>')
            started = None
    if started is not None:  # still running when the run ended (--keep-running, or killed)
        out.append(f'<rect class="svc open" x="{scale.x(started):.1f}" y="{y + 8}" '
                   f'width="{max(CHART_R - scale.x(started), 1):.1f}" height="6"/>')
    return out + [_marker(e, y, scale) for e in events]


def _service_log(run_dir: Path, service: str) -> str | None:
    for name in (f"{service}.log", f"{service}.stdout.log", f"pytest-{service}.log"):
        if (run_dir / "logs" / name).is_file():
            return f"logs/{name}"
    return None


def event_times(steps: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[float]:
    times = [t for s in steps if num(s, "started_at") > 0
             for t in (num(s, "started_at"), num(s, "started_at") + num(s, "duration"))]
    return times + [num(e, "at") for e in events if num(e, "at") > 0]


def timeline_html(steps: list[dict[str, Any]], events: list[dict[str, Any]],
                  run_dir: Path) -> str:
    timed = sorted((e for e in events if num(e, "at") > 0), key=lambda e: num(e, "at"))
    times = event_times(steps, timed)
    if not times:
        return '<p class="empty">No timing was recorded: no step finished.</p>'
    scale = _Scale(min(times), max(times))
    services = list(dict.fromkeys(text_of(e, "service") for e in timed))
    height = TOP + ROW_H * (len(steps) + len(services)) + 14
    out = _axis(scale, height - 6)
    for n, step in enumerate(steps):
        out += _step_row(step, TOP + n * ROW_H, scale)
    y0 = TOP + len(steps) * ROW_H + 6
    out.append(f'<line class="grid" x1="0" y1="{y0 - 3}" x2="{CHART_R + 60}" y2="{y0 - 3}"/>')
    for n, name in enumerate(services):
        mine = [e for e in timed if text_of(e, "service") == name]
        out += _service_row(name, mine, y0 + n * ROW_H, scale, _service_log(run_dir, name))
    legend = "".join(f'<i class="{c}" style="background:{col}"></i>{esc(t)}' for c, col, t in (
        ("sq", "#4ac26b", "step passed"), ("sq", "#fa4549", "step failed"),
        ("sq", "#8c959f", "service up"), ("sq", "#c8a2ff", "no stop recorded"),
        ("", "#0969da", "start"), ("", "#1a7f37", "ready"),
        ("", "#57606a", "stop"), ("", "#bc4c00", "exited"), ("", "#cf222e", "✕ crash / kill")))
    return (f'<svg class="chart" viewBox="0 0 {CHART_R + 60:.0f} {height}" role="img" '
            f'aria-label="timeline of steps and services" xmlns="http://www.w3.org/2000/svg">'
            f'{"".join(out)}</svg><p class="legend">{legend} · service names link to their '
            "logs; hover a bar or marker for details</p>")
