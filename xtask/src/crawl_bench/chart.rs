//! One chart per server: every system's concurrency over time (its first run), with the server's limit.

use std::path::Path;

use plotters::prelude::*;

use super::CrawlResult;
use crate::Result;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws `runs` (`(system, result)`) to `path` as SVG, with a dashed line at `limit` concurrency.
pub(super) fn draw(
    path: &Path,
    title: &str,
    runs: &[(String, &CrawlResult)],
    limit: f64,
) -> Result<()> {
    let t_max = runs
        .iter()
        .flat_map(|(_, r)| r.timeline.last().map(|p| p.t))
        .fold(1.0, f64::max);
    let c_max = runs
        .iter()
        .flat_map(|(_, r)| r.timeline.iter().map(|p| p.current as f64))
        .fold(limit * 1.2, f64::max);
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..t_max, 0.0..c_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("tasks running")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, limit), (t_max, limit)],
            BLACK.mix(0.4),
        ))
        .map_err(|e| e.to_string())?
        .label("server limit")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
    for (i, (system, r)) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                r.timeline.iter().map(|p| (p.t, p.current as f64)),
                color,
            ))
            .map_err(|e| e.to_string())?
            .label(format!("{system}: {:.0} pages/s", r.pages_per_s))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
