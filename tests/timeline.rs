//! The switch as a picture, laid out by a real browser: `drill --timeline` writes the page,
//! Debian's headless Chromium loads a copy of it with a measuring script appended, and the
//! script reports what Chromium drew: each lane's box, the chat write outage band, the SQL
//! critical path bar.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CHROMIUM: &str = "chromium";

/// Appended to the page: the boxes Chromium laid out, as JSON in `body[data-layout]`.
const MEASURE: &str = r#"<script>
const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
  return { left: r.left, top: r.top, width: r.width, height: r.height }; };
document.body.setAttribute('data-layout', JSON.stringify(
  [...document.querySelectorAll('svg.timeline')].map((svg) => ({
    lanes: [...svg.querySelectorAll('g.lane')].map((g) => ({ lane: g.dataset.lane, box: box(g) })),
    outage: box(svg.querySelector('g.outage rect')),
    critical: box(svg.querySelector('g.critical-path rect')),
    writes: svg.querySelectorAll('rect.write').length,
    statements: svg.querySelectorAll('line.statement').length,
  }))));
</script>"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-timeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What Chromium laid out for the page at `page`: the DOM after load, with the measurements.
fn layout(page: &Path, dir: &Path) -> Vec<Value> {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("{CHROMIUM} does not start ({e}): install Debian's chromium (.ci/run does)")
        });
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("data-layout=\"").unwrap_or_else(|| {
        panic!(
            "no layout in Chromium's DOM:\n{dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "data-layout=\"".len();
    let end = start + dom[start..].find('"').expect("the attribute ends");
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn chromium_draws_a_lane_per_instance_and_for_chat_writes_with_the_outage_band_and_critical_path() {
    let dir = scratch("drill");
    let pool = dir.join("pool.yaml");
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pool.yaml"))
            .unwrap();
    std::fs::write(
        &pool,
        example.replace("allowDataLoss: false", "allowDataLoss: true"),
    )
    .unwrap();
    let page = dir.join("timeline.html");
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(["drill", "--rate", "100", "-f"])
        .arg(&pool)
        .arg("--timeline")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
        assert!(!html.contains(outside), "the page loads nothing: {outside}");
    }
    let measured_page = dir.join("measured.html");
    std::fs::write(
        &measured_page,
        html.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let pictures = layout(&measured_page, &dir);
    assert_eq!(pictures.len(), 3, "one picture per scenario: {pictures:?}");
    for (index, picture) in pictures.iter().enumerate() {
        let lanes: Vec<&str> = picture["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lane"].as_str().unwrap())
            .collect();
        assert_eq!(
            lanes,
            [
                "atl-sql1",
                "atl-sql2",
                "dal-sql1",
                "dal-sql2",
                "chat writes"
            ],
            "scenario {}",
            index + 1
        );
        let tops: Vec<f64> = picture["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let b = &l["box"];
                assert!(b["width"].as_f64().unwrap() >= 1000.0, "{l}");
                assert!(b["height"].as_f64().unwrap() >= 40.0, "{l}");
                b["top"].as_f64().unwrap()
            })
            .collect();
        assert!(
            tops.windows(2).all(|w| w[1] >= w[0] + 40.0),
            "lanes one under the other: {tops:?}"
        );
        let outage = &picture["outage"];
        assert!(
            outage["width"].as_f64().is_some_and(|w| w >= 2.0),
            "scenario {}: an outage band: {picture}",
            index + 1
        );
        // The band crosses every lane.
        assert!(outage["height"].as_f64().unwrap() >= 5.0 * 40.0, "{outage}");
        assert!(picture["statements"].as_u64().unwrap() > 0, "{picture}");
    }
    for picture in &pictures[..2] {
        assert!(
            picture["critical"]["width"]
                .as_f64()
                .is_some_and(|w| w >= 1.0),
            "the planned switches' critical path: {picture}"
        );
        assert!(picture["writes"].as_u64().unwrap() > 0, "{picture}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
