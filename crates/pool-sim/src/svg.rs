//! A small SVG renderer: one figure per scenario with desired and running concurrency per policy,
//! throughput, and the CPU, memory and 429 signals over time.

use std::fmt::Write as _;

use crate::report::ScenarioResult;

const W: f64 = 760.0;
const PANEL_H: f64 = 150.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const GAP: f64 = 34.0;

struct Panel<'a> {
    title: &'a str,
    y_max: f64,
    top: f64,
}

impl Panel<'_> {
    fn x(&self, t: f64, t_max: f64) -> f64 {
        LEFT + (W - LEFT - RIGHT) * t / t_max.max(1e-9)
    }
    fn y(&self, v: f64) -> f64 {
        self.top + PANEL_H * (1.0 - (v / self.y_max.max(1e-9)).clamp(0.0, 1.05))
    }
}

fn polyline(
    out: &mut String,
    p: &Panel<'_>,
    t_max: f64,
    pts: &[(f64, f64)],
    color: &str,
    dash: bool,
) {
    let mut d = String::new();
    for (t, v) in pts {
        let _ = write!(d, "{:.1},{:.1} ", p.x(*t, t_max), p.y(*v));
    }
    let dash = if dash {
        " stroke-dasharray=\"4 3\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.3\"{dash} points=\"{}\"/>",
        d.trim_end()
    );
}

fn frame(out: &mut String, p: &Panel<'_>, t_max: f64, legend: &[(&str, &str)]) {
    let (x0, x1) = (LEFT, W - RIGHT);
    let _ = writeln!(
        out,
        "<rect x=\"{x0}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#999\"/>",
        p.top,
        x1 - x0
    );
    let _ = writeln!(
        out,
        "<text x=\"{x0}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
        p.top - 5.0,
        p.title
    );
    for k in 0..=4 {
        let v = p.y_max * f64::from(k) / 4.0;
        let y = p.y(v);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            x0 - 4.0,
            y + 3.0,
            if p.y_max >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        );
    }
    let step = if t_max > 400.0 { 120.0 } else { 60.0 };
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{t:.0}s</text>",
            p.x(t, t_max),
            p.top + PANEL_H + 12.0
        );
        t += step;
    }
    let mut lx = x1 - 8.0;
    for (name, color) in legend.iter().rev() {
        let _ = writeln!(
            out,
            "<text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"{color}\">{name}</text>",
            p.top - 5.0
        );
        lx -= 9.0 + 6.5 * name.len() as f64;
    }
}

/// Renders one scenario's figure.
pub fn render(r: &ScenarioResult) -> String {
    let sc = &r.scenario;
    let t_max = sc.duration_s;
    let colors = [("crawlee", "#d62728"), ("adaptive", "#1f77b4")];
    let color = |name: &str| {
        colors
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("#555", |(_, c)| *c)
    };
    let c_max = r
        .runs
        .iter()
        .flat_map(|(_, run, _)| run.series.iter().map(|s| s.desired.max(s.running)))
        .max()
        .unwrap_or(1) as f64;
    let thr_max = r
        .runs
        .iter()
        .flat_map(|(_, run, _)| run.series.iter().map(|s| (s.completed + s.rejected) as f64))
        .fold(r.oracles.run.goodput, f64::max);
    let h = TOP + 3.0 * (PANEL_H + GAP) + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h:.0}\" viewBox=\"0 0 {W} {h:.0}\" \
         font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}: {}</text>",
        sc.name, sc.description
    );

    // Panel 1: concurrency.
    let p = Panel {
        title: "concurrency: desired (solid), running (dashed), oracle (grey)",
        y_max: c_max * 1.05,
        top: TOP,
    };
    frame(&mut out, &p, t_max, &colors);
    let oy = p.y(r.oracles.run.concurrency as f64);
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{oy:.1}\" y2=\"{oy:.1}\" stroke=\"#aaa\" stroke-dasharray=\"2 2\"/>",
        W - RIGHT
    );
    for (name, run, _) in &r.runs {
        let d: Vec<_> = run.series.iter().map(|s| (s.t, s.desired as f64)).collect();
        let c: Vec<_> = run.series.iter().map(|s| (s.t, s.running as f64)).collect();
        polyline(&mut out, &p, t_max, &d, color(name), false);
        polyline(&mut out, &p, t_max, &c, color(name), true);
    }

    // Panel 2: throughput (5 s moving average), goodput solid, 429s dashed.
    let p = Panel {
        title: "completions/s (5 s mean; oracle grey), 429s/s dashed",
        y_max: thr_max * 1.1,
        top: TOP + PANEL_H + GAP,
    };
    frame(&mut out, &p, t_max, &colors);
    let oy = p.y(r.oracles.run.goodput);
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{oy:.1}\" y2=\"{oy:.1}\" stroke=\"#aaa\" stroke-dasharray=\"2 2\"/>",
        W - RIGHT
    );
    for (name, run, _) in &r.runs {
        let avg = |f: &dyn Fn(&crate::model::Sample) -> f64| -> Vec<(f64, f64)> {
            run.series
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let from = k.saturating_sub(4);
                    let w = &run.series[from..=k];
                    (s.t, w.iter().map(f).sum::<f64>() / w.len() as f64)
                })
                .collect()
        };
        polyline(
            &mut out,
            &p,
            t_max,
            &avg(&|s| s.completed as f64),
            color(name),
            false,
        );
        if run.rejected > 0 {
            polyline(
                &mut out,
                &p,
                t_max,
                &avg(&|s| s.rejected as f64),
                color(name),
                true,
            );
        }
    }

    // Panel 3: signals, as shares of capacity.
    let p = Panel {
        title: "CPU demand/capacity (solid), memory/budget (dashed)",
        y_max: 1.5,
        top: TOP + 2.0 * (PANEL_H + GAP),
    };
    frame(&mut out, &p, t_max, &colors);
    let oy = p.y(1.0);
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{oy:.1}\" y2=\"{oy:.1}\" stroke=\"#aaa\" stroke-dasharray=\"2 2\"/>",
        W - RIGHT
    );
    for (name, run, _) in &r.runs {
        let cpu: Vec<_> = run.series.iter().map(|s| (s.t, s.cpu)).collect();
        let mem: Vec<_> = run.series.iter().map(|s| (s.t, s.memory)).collect();
        polyline(&mut out, &p, t_max, &cpu, color(name), false);
        polyline(&mut out, &p, t_max, &mem, color(name), true);
    }
    out.push_str("</svg>\n");
    out
}
