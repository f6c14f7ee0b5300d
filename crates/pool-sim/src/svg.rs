//! The figures, drawn with plotters: one SVG per scenario with desired and running concurrency per policy,
//! throughput, and the CPU and memory signals over time.

use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::model::{RunResult, Sample};
use crate::report::ScenarioResult;

/// The figure's size in pixels: a heading, then three panels stacked.
const SIZE: (u32, u32) = (800, 760);
/// The heading's height: the title line and the legend line.
const HEADING: u32 = 44;

/// Crawlee's policy in red and the adaptive one in blue, the colours the docs' captions name.
const CRAWLEE: RGBColor = RGBColor(214, 39, 40);
const ADAPTIVE: RGBColor = RGBColor(31, 119, 180);
const OTHER: RGBColor = RGBColor(85, 85, 85);
/// The oracle's (or the capacity's) reference line.
const REFERENCE: RGBColor = RGBColor(150, 150, 150);

fn color(policy: &str) -> RGBColor {
    match policy {
        "crawlee" => CRAWLEE,
        "adaptive" => ADAPTIVE,
        _ => OTHER,
    }
}

/// One panel's chart over `0..t_max` seconds and `0..y_max`.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    t_max: f64,
    y_max: f64,
) -> Result<Chart<'a, 'b>, Box<dyn Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 13))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
    // Counts and rates read as whole numbers; shares need two decimals.
    let y_label = move |v: &f64| {
        if y_max >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    chart
        .configure_mesh()
        .max_light_lines(0)
        .bold_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|t| format!("{t:.0}s"))
        .y_label_formatter(&y_label)
        .label_style(("sans-serif", 11))
        .draw()?;
    Ok(chart)
}

/// A grey dashed horizontal line at `y` across the run: the oracle, or full capacity.
fn reference<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    t_max: f64,
    y: f64,
) -> Result<(), Box<dyn Error>> {
    chart.draw_series(DashedLineSeries::new(
        [(0.0, y), (t_max, y)],
        6,
        6,
        REFERENCE.stroke_width(1),
    ))?;
    Ok(())
}

/// A policy's series: its main figure bold, or its second figure of the panel light.
fn series<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    points: Vec<(f64, f64)>,
    policy: &str,
    light: bool,
) -> Result<(), Box<dyn Error>> {
    // The second figure is a pale solid line rather than a dashed one: plotters draws every dash as its own
    // element, which made the figures six times larger for no gain in reading.
    let style = if light {
        color(policy).mix(0.45).stroke_width(1)
    } else {
        color(policy).stroke_width(2)
    };
    chart.draw_series(LineSeries::new(points, style))?;
    Ok(())
}

/// `f` over a trailing 5 s window, at each sample.
fn mean_5s(run: &RunResult, f: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    run.series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let w = &run.series[k.saturating_sub(4)..=k];
            (s.t, w.iter().map(&f).sum::<f64>() / w.len() as f64)
        })
        .collect()
}

/// The title, then one legend line: each policy's name in its colour.
fn heading(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    r: &ScenarioResult,
) -> Result<(), Box<dyn Error>> {
    let title = format!("{}: {}", r.scenario.name, r.scenario.description);
    area.draw(&Text::new(
        title,
        (12, 6),
        ("sans-serif", 15).into_font().style(FontStyle::Bold),
    ))?;
    let mut x = 12;
    for (name, _, _) in &r.runs {
        let style = ("sans-serif", 13).into_font().color(&color(name));
        area.draw(&Text::new(format!("■ {name}"), (x, 26), style))?;
        x += 20 + 8 * name.len() as i32;
    }
    Ok(())
}

/// Renders one scenario's figure as SVG text.
///
/// # Errors
///
/// A drawing error from plotters (which, drawing into a string, has no IO to fail).
pub fn render(r: &ScenarioResult) -> Result<String, Box<dyn Error>> {
    let sc = &r.scenario;
    let t_max = sc.duration_s;
    let c_max = r
        .runs
        .iter()
        .flat_map(|(_, run, _)| run.series.iter().map(|s| s.desired.max(s.running)))
        .chain([r.oracles.run.concurrency])
        .max()
        .unwrap_or(1) as f64;
    let thr_max = r
        .runs
        .iter()
        .flat_map(|(_, run, _)| run.series.iter().map(|s| (s.completed + s.rejected) as f64))
        .fold(r.oracles.run.goodput, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(HEADING);
        heading(&top, r)?;
        let panels = body.split_evenly((3, 1));

        let mut chart = panel(
            &panels[0],
            "concurrency: desired (bold), running (pale), oracle (grey)",
            t_max,
            c_max * 1.1,
        )?;
        reference(&mut chart, t_max, r.oracles.run.concurrency as f64)?;
        for (name, run, _) in &r.runs {
            let desired = run.series.iter().map(|s| (s.t, s.desired as f64)).collect();
            let running = run.series.iter().map(|s| (s.t, s.running as f64)).collect();
            series(&mut chart, running, name, true)?;
            series(&mut chart, desired, name, false)?;
        }

        let mut chart = panel(
            &panels[1],
            "completions/s (bold, 5 s mean; oracle grey), 429s/s (pale)",
            t_max,
            thr_max * 1.1,
        )?;
        reference(&mut chart, t_max, r.oracles.run.goodput)?;
        for (name, run, _) in &r.runs {
            // A policy that met no 429 would only add a flat line along the axis.
            if run.rejected > 0 {
                series(&mut chart, mean_5s(run, |s| s.rejected as f64), name, true)?;
            }
            series(
                &mut chart,
                mean_5s(run, |s| s.completed as f64),
                name,
                false,
            )?;
        }

        let mut chart = panel(
            &panels[2],
            "CPU demand/capacity (bold), memory/budget (pale)",
            t_max,
            1.5,
        )?;
        reference(&mut chart, t_max, 1.0)?;
        for (name, run, _) in &r.runs {
            // Readings past the panel's top are drawn at it, as before, so that no line leaves its panel.
            let cpu = run.series.iter().map(|s| (s.t, s.cpu.min(1.5))).collect();
            let mem = run
                .series
                .iter()
                .map(|s| (s.t, s.memory.min(1.5)))
                .collect();
            series(&mut chart, mem, name, true)?;
            series(&mut chart, cpu, name, false)?;
        }
        root.present()?;
    }
    Ok(svg)
}
