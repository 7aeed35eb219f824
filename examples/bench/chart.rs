//! `--svg`: the results as an SVG chart, written as text (no plotting dependency). A load run shows each scenario
//! against its target and as a share of `/healthz`; an `--instructions` run shows instructions per request.

use std::fmt::Write as _;

use crate::instructions::Count;

/// One scenario of a load run, as the chart shows it.
pub struct Bar {
    pub name: String,
    /// Measured against the target, 1.0 = exactly met, more is better (`None`: no target).
    pub score: Option<f64>,
    /// The figure the target is about and the target, as text (`45 % of /healthz`, `>= 40 %`).
    pub measured: String,
    pub target: String,
    /// Throughput as a share of /healthz's (`None`: not a load, or no ceiling).
    pub share: Option<f64>,
}

const ROW: f64 = 24.0;
const TOP: f64 = 70.0;
const NAME_W: f64 = 130.0;
/// The first panel (against the target) spans 0 to 2× the target; the second 0 to 100 % of /healthz.
const A_X: f64 = 150.0;
const A_W: f64 = 260.0;
const B_X: f64 = 690.0;
const B_W: f64 = 220.0;
const WIDTH: f64 = 1010.0;

/// The chart of a load run: each scenario against its target, and its throughput as a share of /healthz.
pub fn results(title: &str, bars: &[Bar]) -> String {
    let height = TOP + ROW * bars.len() as f64 + 40.0;
    let mut s = open(title, height);
    let bottom = TOP + ROW * bars.len() as f64;
    heading(
        &mut s,
        A_X,
        "against its target (bar end: measured; dashed line: the target)",
    );
    heading(&mut s, B_X, "throughput as a share of /healthz");
    for (x, label) in [(A_X, "0"), (A_X + A_W / 2.0, "target"), (A_X + A_W, "2×")] {
        axis_label(&mut s, x, bottom, label);
    }
    for (k, label) in ["0", "25 %", "50 %", "75 %", "100 %"].iter().enumerate() {
        let x = B_X + B_W * k as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#ddd"/>"##,
            TOP - 8.0
        );
        axis_label(&mut s, x, bottom, label);
    }
    let _ = writeln!(
        s,
        r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#333" stroke-dasharray="4 3"/>"##,
        TOP - 8.0,
        x = A_X + A_W / 2.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = writeln!(s, r#"<text x="10" y="{:.1}">{}</text>"#, y + 12.0, escape(&b.name));
        if let Some(score) = b.score {
            let colour = if score >= 1.0 { "#3a9a4a" } else { "#d0443a" };
            let w = A_W / 2.0 * score.clamp(0.0, 2.0);
            bar(&mut s, A_X, y, w, colour);
        }
        let text = match b.score {
            Some(_) => format!("{} (target {})", b.measured, b.target),
            None => b.target.clone(),
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="small">{}</text>"#,
            A_X + A_W + 8.0,
            y + 12.0,
            escape(&text)
        );
        if let Some(share) = b.share {
            bar(&mut s, B_X, y, B_W * share.clamp(0.0, 1.2), "#4a78c0");
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" class="small">{:.0} %</text>"#,
                B_X + B_W * share.clamp(0.0, 1.2) + 6.0,
                y + 12.0,
                share * 100.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The chart of an `--instructions` run: instructions per request, and each as a multiple of /healthz's.
pub fn instructions(counts: &[Count]) -> String {
    let height = TOP + ROW * counts.len() as f64 + 20.0;
    let mut s = open("ipamd: user-space instructions per request (callgrind)", height);
    let most = counts.iter().map(|c| c.per_request).fold(1.0, f64::max);
    let healthz = counts.iter().find(|c| c.name == "healthz").map(|c| c.per_request);
    let width = WIDTH - NAME_W - 220.0;
    for (i, c) in counts.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let w = width * c.per_request / most;
        let _ = writeln!(s, r#"<text x="10" y="{:.1}">{}</text>"#, y + 12.0, escape(c.name));
        bar(&mut s, A_X, y, w, "#4a78c0");
        let times = healthz.map_or(String::new(), |h| format!(" ({:.1}× /healthz)", c.per_request / h));
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="small">{}{times}</text>"#,
            A_X + w + 6.0,
            y + 12.0,
            crate::group_digits(c.per_request.round() as u64)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn open(title: &str, height: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="13">
<style>.small {{ font-size: 11px; fill: #333 }} .head {{ font-size: 12px; fill: #555 }}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="24" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    );
    s
}

fn heading(s: &mut String, x: f64, text: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{:.1}" class="head">{}</text>"#,
        TOP - 16.0,
        escape(text)
    );
}

fn axis_label(s: &mut String, x: f64, bottom: f64, text: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{:.1}" class="small" text-anchor="middle">{}</text>"#,
        bottom + 14.0,
        escape(text)
    );
}

fn bar(s: &mut String, x: f64, y: f64, w: f64, colour: &str) {
    let _ = writeln!(
        s,
        r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"/>"#,
        y + 2.0,
        ROW - 8.0
    );
}

/// Text for SVG: markup characters escaped, the report's `>=` and `<=` as the signs a chart can show.
fn escape(text: &str) -> String {
    text.replace(">=", "≥")
        .replace("<=", "≤")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
