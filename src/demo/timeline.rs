//! The switch as a picture: for each act (or drill scenario) one SVG timeline with a lane per
//! instance (the engine's steps as boxes, the operator's writing statements as ticks with their
//! T-SQL as a tooltip, the chat database's state as it changed) and a lane of chat writes, the
//! chat write outage as a band across every lane and the SQL critical path (from the switch's
//! first statement to the publish of the new site) as a bar above them. Written as one
//! self-contained HTML page: no script, style sheet or font from anywhere else.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::acts::ActOutcome;
use super::figures;
use super::world::{OPERATOR_PROGRAM, World};
use pchat_sim::workload::Ack;

/// A stretch of wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Span {
    fn millis(&self) -> i128 {
        self.to.duration_since(self.from).as_millis()
    }
}

/// One instance's lane.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lane {
    pub instance: String,
    pub site: String,
    /// The site's place in the spec (its colour).
    pub site_index: usize,
    /// The engine's steps that sent statements to this instance: when, and the step's name.
    pub steps: Vec<(Span, String)>,
    /// The operator's statements that change something, as the instance logged them.
    pub statements: Vec<(Timestamp, String)>,
    /// The chat database's state from the moment the engine saw it.
    pub states: Vec<(Timestamp, String)>,
}

/// One act's picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub title: String,
    pub window: Span,
    pub lanes: Vec<Lane>,
    /// Acknowledged chat writes in the window.
    pub writes: Vec<Timestamp>,
    pub outage: Option<Span>,
    /// From the switch's first statement to the publish of the new site's chat servers, and
    /// the statements' own time in it (the SQL critical path).
    pub critical_path: Option<(Span, std::time::Duration)>,
}

/// The picture of `act`, titled `{kind} {number}: {title}`, taken from `world` (its steps,
/// the simulator's statement logs, the states it saw) and the acknowledgements `acked`. The
/// world must still be running.
pub fn picture(world: &World, kind: &str, act: &ActOutcome, acked: &[Ack]) -> Picture {
    let window = Span {
        from: act.started_at,
        to: act
            .started_at
            .checked_add(jiff::SignedDuration::try_from(act.wall).unwrap_or_default())
            .unwrap_or(act.started_at),
    };
    let inside = |t: Timestamp| t >= window.from && t <= window.to;
    let steps: Vec<_> = world.steps.iter().filter(|s| s.act == act.number).collect();
    let mut lanes = Vec::new();
    for (site_index, site) in world.spec.sites.iter().enumerate() {
        for instance in &site.instances {
            let mut lane = Lane {
                instance: instance.name.clone(),
                site: site.name.clone(),
                site_index,
                ..Lane::default()
            };
            for step in &steps {
                if step.statements.iter().any(|s| s.instance == instance.name) {
                    let to = world.wall_time(step.ended);
                    let from = world.wall_time(step.ended - step.elapsed);
                    lane.steps
                        .push((Span { from, to }, step.step.name().to_string()));
                }
            }
            lane.statements = world
                .sim
                .sim
                .statement_log(&instance.name)
                .into_iter()
                .filter(|s| s.program_name == OPERATOR_PROGRAM && s.writes)
                .filter_map(|s| {
                    let at =
                        Timestamp::from_nanosecond(s.at.and_utc().timestamp_nanos_opt()?.into())
                            .ok()?;
                    inside(at).then_some((at, s.text))
                })
                .collect();
            // The state at the start of the window, then its changes inside it.
            let mut seen = world.states.iter().filter(|c| c.instance == instance.name);
            let before = seen
                .clone()
                .rfind(|c| c.at < window.from)
                .map(|c| (window.from, c.state.clone()));
            lane.states = before
                .into_iter()
                .chain(
                    seen.by_ref()
                        .filter(|c| inside(c.at))
                        .map(|c| (c.at, c.state.clone())),
                )
                .collect();
            lanes.push(lane);
        }
    }
    let writes = acked.iter().map(|a| a.at).filter(|&t| inside(t)).collect();
    let outage = act.write_outage_between.map(|(from, to)| Span {
        from: from.max(window.from),
        to,
    });
    let critical_path = figures::critical_path(&steps).map(|(first, last, sql)| {
        (
            Span {
                from: world.wall_time(first),
                to: world.wall_time(last),
            },
            sql,
        )
    });
    Picture {
        title: format!("{kind} {}: {}", act.number, act.title),
        window,
        lanes,
        writes,
        outage,
        critical_path,
    }
}

/// Width of the drawing, in pixels, and of its lane labels.
const WIDTH: f64 = 1200.0;
const LABEL: f64 = 150.0;
const LANE: f64 = 50.0;
const TOP: f64 = 56.0;

/// Escape text for XML content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Write the page to `path`; `Err` names the file.
pub fn write_html(
    path: &std::path::Path,
    heading: &str,
    pictures: &[Picture],
) -> Result<(), String> {
    std::fs::write(path, render_html(heading, pictures))
        .map_err(|e| format!("cannot write the timeline to {}: {e}", path.display()))
}

/// The page: a heading and one SVG per picture.
pub fn render_html(heading: &str, pictures: &[Picture]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font-family:sans-serif;margin:16px;color:#222;background:#fff}}\
         h1{{font-size:18px}} h2{{font-size:15px;margin:18px 0 4px}}\
         svg text{{font-family:sans-serif}}</style></head>\n<body>\n<h1>{}</h1>\n",
        esc(heading),
        esc(heading)
    );
    for picture in pictures {
        let _ = writeln!(out, "<h2>{}</h2>", esc(&picture.title));
        out.push_str(&render_svg(picture));
        out.push('\n');
    }
    out.push_str("</body></html>\n");
    out
}

/// One picture as an SVG element.
pub fn render_svg(picture: &Picture) -> String {
    let lanes = picture.lanes.len() + 1;
    let height = TOP + LANE * lanes as f64 + 30.0;
    let total = picture.window.millis().max(1) as f64;
    let x = |t: Timestamp| {
        let ms = t.duration_since(picture.window.from).as_millis() as f64;
        LABEL + (WIDTH - LABEL - 10.0) * (ms / total).clamp(0.0, 1.0)
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">"
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/>"
    );
    axis(&mut svg, total, height);
    for (index, lane) in picture.lanes.iter().enumerate() {
        instance_lane(&mut svg, lane, TOP + LANE * index as f64, &x);
    }
    writes_lane(
        &mut svg,
        picture,
        TOP + LANE * picture.lanes.len() as f64,
        &x,
    );
    if let Some((path, sql)) = picture.critical_path {
        let (from, to) = (x(path.from), x(path.to));
        let label = format!(
            "SQL critical path {} ms of statements, {} ms from the first to the publish",
            sql.as_millis(),
            path.millis()
        );
        let _ = writeln!(
            svg,
            "<g class=\"critical-path\"><rect x=\"{from:.1}\" y=\"{}\" width=\"{:.1}\" height=\"8\" fill=\"#1f5fbf\"><title>{label}</title></rect><text x=\"{from:.1}\" y=\"{}\" font-size=\"11\" fill=\"#1f5fbf\">{label}</text></g>",
            TOP - 14.0,
            (to - from).max(1.0),
            TOP - 18.0,
        );
    }
    if let Some(outage) = picture.outage {
        let (from, to) = (x(outage.from), x(outage.to));
        let _ = writeln!(
            svg,
            "<g class=\"outage\"><rect x=\"{from:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{}\" fill=\"#d62728\" fill-opacity=\"0.18\" stroke=\"#d62728\" stroke-width=\"1\"><title>chat write outage {} ms</title></rect><text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#d62728\">chat write outage {} ms</text></g>",
            (to - from).max(2.0),
            LANE * lanes as f64,
            outage.millis(),
            to + 4.0,
            TOP + LANE * lanes as f64 + 14.0,
            outage.millis()
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Milliseconds from the window's start, ticked along the top.
fn axis(svg: &mut String, total_ms: f64, height: f64) {
    let step = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0,
    ]
    .into_iter()
    .find(|s| total_ms / s <= 12.0)
    .unwrap_or(20_000.0);
    let mut at = 0.0;
    while at <= total_ms {
        let px = LABEL + (WIDTH - LABEL - 10.0) * (at / total_ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"#e4e4e4\"/><text x=\"{px:.1}\" y=\"14\" font-size=\"10\" fill=\"#777\" text-anchor=\"middle\">{} ms</text>",
            20.0,
            height - 24.0,
            at as u64
        );
        at += step;
    }
}

fn site_colour(site_index: usize) -> &'static str {
    ["#2ca02c", "#9467bd"][site_index % 2]
}

fn instance_lane(svg: &mut String, lane: &Lane, top: f64, x: &impl Fn(Timestamp) -> f64) {
    let colour = site_colour(lane.site_index);
    let _ = writeln!(
        svg,
        "<g class=\"lane\" data-lane=\"{}\"><rect x=\"0\" y=\"{top}\" width=\"{WIDTH}\" height=\"{LANE}\" fill=\"#fafafa\" stroke=\"#eee\"/><text x=\"8\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{}</text><text x=\"8\" y=\"{}\" font-size=\"10\" fill=\"#777\">{}</text>",
        esc(&lane.instance),
        top + 18.0,
        esc(&lane.instance),
        top + 32.0,
        esc(&lane.site)
    );
    for (span, name) in &lane.steps {
        let (from, to) = (x(span.from), x(span.to));
        let _ = writeln!(
            svg,
            "<rect class=\"step\" x=\"{from:.1}\" y=\"{}\" width=\"{:.1}\" height=\"14\" fill=\"{colour}\" fill-opacity=\"0.55\"><title>{} ({} ms)</title></rect>",
            top + 6.0,
            (to - from).max(2.0),
            esc(name),
            span.millis()
        );
    }
    for (at, text) in &lane.statements {
        let px = x(*at);
        let _ = writeln!(
            svg,
            "<line class=\"statement\" x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"#222\" stroke-width=\"1.5\"><title>{}</title></line>",
            top + 4.0,
            top + 22.0,
            esc(text)
        );
    }
    // A state's dot and label sit at its time, on the first of two rows where the label does
    // not run into the previous one (about 5.5 px a character at 10 px); when neither row is
    // free the label follows the previous one on the row that frees first.
    let mut free_from = [0.0_f64; 2];
    for (at, state) in &lane.states {
        let px = x(*at);
        let row = (0..2)
            .find(|&r| px >= free_from[r])
            .unwrap_or_else(|| usize::from(free_from[1] < free_from[0]));
        let label_x = (px + 5.0).max(free_from[row] + 5.0);
        free_from[row] = label_x + 5.5 * state.chars().count() as f64 + 4.0;
        let y = top + 31.0 + 11.0 * row as f64;
        let _ = writeln!(
            svg,
            "<g class=\"state\"><circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#555\"/><text x=\"{label_x:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#333\">{}</text></g>",
            y - 3.5,
            y,
            esc(state)
        );
    }
    svg.push_str("</g>\n");
}

/// The acknowledged writes, as one bar per pixel column that holds any.
fn writes_lane(svg: &mut String, picture: &Picture, top: f64, x: &impl Fn(Timestamp) -> f64) {
    let _ = writeln!(
        svg,
        "<g class=\"lane\" data-lane=\"chat writes\"><rect x=\"0\" y=\"{top}\" width=\"{WIDTH}\" height=\"{LANE}\" fill=\"#f4f8ff\" stroke=\"#eee\"/><text x=\"8\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">chat writes</text><text x=\"8\" y=\"{}\" font-size=\"10\" fill=\"#777\">{} acknowledged</text>",
        top + 18.0,
        top + 32.0,
        picture.writes.len()
    );
    let mut columns: Vec<(i64, usize)> = Vec::new();
    for at in &picture.writes {
        let column = x(*at).floor() as i64;
        match columns.last_mut() {
            Some((c, n)) if *c == column => *n += 1,
            _ => columns.push((column, 1)),
        }
    }
    columns.sort();
    let most = columns.iter().map(|(_, n)| *n).max().unwrap_or(1) as f64;
    for (column, count) in columns {
        let h = 6.0 + 30.0 * (count as f64 / most);
        let _ = writeln!(
            svg,
            "<rect class=\"write\" x=\"{column}\" y=\"{:.1}\" width=\"1\" height=\"{h:.1}\" fill=\"#1f77b4\"/>",
            top + LANE - 4.0 - h
        );
    }
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_764_000_000_000 + ms).unwrap()
    }

    fn picture() -> Picture {
        Picture {
            title: "act 2: planned switch atlanta -> dallas".into(),
            window: Span {
                from: at(0),
                to: at(1000),
            },
            lanes: vec![Lane {
                instance: "atl-sql1".into(),
                site: "atlanta".into(),
                site_index: 0,
                steps: vec![(
                    Span {
                        from: at(100),
                        to: at(140),
                    },
                    "DemoteOldPrimary".into(),
                )],
                statements: vec![(
                    at(110),
                    "BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY".into(),
                )],
                states: vec![
                    (at(0), "ONLINE principal".into()),
                    (at(150), "RESTORING".into()),
                ],
            }],
            writes: vec![at(10), at(20), at(400)],
            outage: Some(Span {
                from: at(20),
                to: at(400),
            }),
            critical_path: Some((
                Span {
                    from: at(100),
                    to: at(300),
                },
                std::time::Duration::from_millis(150),
            )),
        }
    }

    #[test]
    fn the_svg_has_a_lane_per_instance_and_for_chat_writes_the_outage_band_and_the_critical_path() {
        let svg = render_svg(&picture());
        assert!(svg.contains("data-lane=\"atl-sql1\""));
        assert!(svg.contains("data-lane=\"chat writes\""));
        assert!(svg.contains("chat write outage 380 ms"));
        assert!(svg.contains("SQL critical path 150 ms of statements, 200 ms from the first"));
        assert!(svg.contains("<title>BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY</title>"));
        assert!(svg.contains(">RESTORING</text>"));
        // 1040 px of drawing for 1000 ms: the outage from 20 ms to 400 ms.
        assert!(svg.contains("class=\"outage\"><rect x=\"170.8\""), "{svg}");
    }

    #[test]
    fn text_from_statements_is_escaped_for_the_page() {
        let mut p = picture();
        p.lanes[0].statements[0].1 = "IF x < 1 AND y > 2 SELECT N'a&b' AS \"q\"".into();
        let html = render_html("drill <pool>", &[p]);
        assert!(html.contains("IF x &lt; 1 AND y &gt; 2 SELECT N'a&amp;b' AS &quot;q&quot;"));
        assert!(html.contains("<title>drill &lt;pool&gt;</title>"));
        assert!(!html.contains("<script"), "self-contained and static");
    }
}
