//! The crawl demo's chart: concurrency, throughput and the load signals over time, as SVG (plotters).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::crawler::PolicyChoice;
use crate::site::SiteConfig;

/// One reading, taken every 250 ms while the pool runs.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the crawl started.
    pub t: f64,
    /// Tasks running.
    pub current: usize,
    /// Desired concurrency.
    pub desired: usize,
    /// Pages fetched so far.
    pub done: u64,
    /// 429 responses so far.
    pub rate_limited: u64,
    /// Overloaded share of the current window: cpu, memory, event loop, client.
    pub ratios: [f64; 4],
}

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const RED_: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(127, 127, 127);

/// Rates per second of `f` over a trailing window of `window` seconds, at each sample.
fn rate(samples: &[Sample], window: f64, f: impl Fn(&Sample) -> u64) -> Vec<(f64, f64)> {
    let mut j = 0;
    samples
        .iter()
        .map(|s| {
            while j + 1 < samples.len() && s.t - samples[j + 1].t >= window {
                j += 1;
            }
            let base = samples.get(j).filter(|b| b.t < s.t);
            let r = base.map_or(0.0, |b| (f(s) - f(b)) as f64 / (s.t - b.t));
            (s.t, r)
        })
        .collect()
}

/// The best pages per second over any 5 s stretch.
pub fn best_throughput(samples: &[Sample]) -> f64 {
    rate(samples, 5.0, |s| s.done)
        .into_iter()
        .zip(samples)
        .filter(|(_, s)| s.t >= 5.0)
        .map(|((_, r), _)| r)
        .fold(0.0, f64::max)
}

fn legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// Writes the chart to `path`.
pub fn draw(
    path: &Path,
    samples: &[Sample],
    site: &SiteConfig,
    policy: PolicyChoice,
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (960, 960)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Crawling {} local pages, policy {policy} (knee {}, 429 above {} in flight)",
        site.pages, site.knee, site.capacity
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let font = ("sans-serif", 16);

    // Concurrency, with the site's knee and capacity for reference.
    let c_max = samples
        .iter()
        .map(|s| s.current.max(s.desired))
        .max()
        .unwrap_or(1)
        .max(site.capacity) as f64
        * 1.15;
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("Concurrency (tasks)", font)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..t_max, 0f64..c_max)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (level, label) in [(site.knee, "site's knee"), (site.capacity, "429 above")] {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, level as f64), (t_max, level as f64)],
                6,
                4,
                GREY.stroke_width(1),
            ))?
            .label(format!("{label} ({level})"))
            .legend(legend(GREY));
    }
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, s.desired as f64)),
            ORANGE.stroke_width(4),
        ))?
        .label("desired")
        .legend(legend(ORANGE));
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, s.current as f64)),
            BLUE_.stroke_width(2),
        ))?
        .label("current")
        .legend(legend(BLUE_));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // Throughput: pages per second and 429s per second, over a trailing second.
    let pages = rate(samples, 1.0, |s| s.done);
    let limited = rate(samples, 1.0, |s| s.rate_limited);
    let r_max = pages
        .iter()
        .chain(&limited)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("Throughput (per second, trailing 1 s)", font)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..t_max, 0f64..r_max)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    chart
        .draw_series(LineSeries::new(pages, GREEN_.stroke_width(2)))?
        .label("pages")
        .legend(legend(GREEN_));
    chart
        .draw_series(LineSeries::new(limited, RED_.stroke_width(2)))?
        .label("429 responses")
        .legend(legend(RED_));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // The load signals: each one's overloaded share of the current (5 s) window.
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("Load signals (overloaded share of the last 5 s)", font)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..t_max, 0f64..1.05)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    let names = ["cpu", "memory", "event loop", "client (429)"];
    let colors = [BLUE_, PURPLE, ORANGE, RED_];
    for (i, (name, color)) in names.into_iter().zip(colors).enumerate() {
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.t, s.ratios[i])),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(legend(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
