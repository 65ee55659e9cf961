//! Figures of the simulator, printed (never asserted: timings depend on the machine):
//! memory and CPU of an idle 4-instance `RunningSim` over 5 s, and the time and memory to
//! start 200 instances in one process, and what the operator's observation of the four
//! instances costs (one batch each, concurrently, as every reconcile pass sends). Run with `cargo bench --bench sim_figures` (optimised)
//! or `cargo test --bench sim_figures` (the dev profile, no release build needed).

use std::time::{Duration, Instant};

use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::Topology;

/// Resident set size of this process in KiB (VmRSS of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// User plus system CPU time of this process (utime + stime of /proc/self/stat).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm in /proc/self/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf with a valid name has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

fn state_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sim-figures-{name}-{}", std::process::id()))
}

/// A topology of `n` instances on free ports, two sites, one chat database.
fn topology_of(n: usize) -> Topology {
    let mut yaml = String::from("instances:\n");
    for i in 0..n {
        let site = if i % 2 == 0 { "atlanta" } else { "dallas" };
        yaml.push_str(&format!(
            "  - {{name: sql{i}, site: {site}, listen: \"127.0.0.1:0\", logins: [{{name: sa, password: Pchat-Sim-1}}]}}\n"
        ));
    }
    yaml.push_str("databases:\n  - {name: mgc, instance: sql0}\n");
    Topology::from_yaml(&yaml).expect("generated topology")
}

/// Median and 90th percentile of `passes` observations of the example pool's four instances
/// through the operator's real executor (`LivePort`) over TDS, and the process CPU (client and
/// simulator together) one pass costs on average.
async fn observation_cost(sim: &RunningSim, passes: usize) -> (Duration, Duration, Duration) {
    use pchat_operator::engine::SqlPort;
    let mut spec = pchat_core::api::load_pool_yaml(include_str!("../examples/pool-local.yaml"))
        .expect("examples/pool-local.yaml")
        .spec;
    for site in &mut spec.sites {
        for inst in &mut site.instances {
            let addr = sim.addr(&inst.name).expect("instance in the topology");
            inst.host = addr.ip().to_string();
            inst.port = addr.port();
        }
    }
    let mut port = pchat_operator::engine::sql_port::LivePort::new(
        pchat_sql::connect::Credentials::new("sa", "Pchat-Sim-1"),
        sim.ca_file.clone(),
    );
    // The first pass connects; the figure is the steady state.
    let _ = port.observe(&spec, None, jiff::Timestamp::now()).await;
    let mut took = Vec::with_capacity(passes);
    let cpu_before = cpu_time();
    for _ in 0..passes {
        let started = Instant::now();
        let obs = port.observe(&spec, None, jiff::Timestamp::now()).await;
        took.push(started.elapsed());
        assert!(obs.instances.iter().all(|i| i.is_reachable()));
    }
    let cpu = (cpu_time() - cpu_before) / passes as u32;
    took.sort();
    (took[passes / 2], took[passes * 9 / 10], cpu)
}

/// The operator binary's allocator (see src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut table: Vec<(String, String)> = Vec::new();
    let baseline = rss_kib();
    table.push((
        "process RSS before any simulator".into(),
        format!("{baseline} KiB"),
    ));

    // An idle 4-instance simulator: the seed topology with its default job intervals.
    let seed = Topology::from_yaml(include_str!("../examples/sim/two-sites.yaml"))
        .expect("examples/sim/two-sites.yaml");
    let dir = state_dir("idle");
    let idle = rt
        .block_on(RunningSim::start(with_free_ports(seed), &dir, None))
        .expect("start the 4-instance simulator");
    let rss_started = rss_kib();
    let cpu_before = cpu_time();
    let wall = Instant::now();
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(5)).await });
    let cpu_idle = cpu_time() - cpu_before;
    let rss_idle = rss_kib();
    table.push((
        "4 instances: RSS after start".into(),
        format!(
            "{rss_started} KiB (+{} KiB)",
            rss_started.saturating_sub(baseline)
        ),
    ));
    table.push((
        "4 instances: RSS after 5 s idle".into(),
        format!("{rss_idle} KiB"),
    ));
    table.push((
        format!(
            "4 instances: CPU over {:.1} s idle",
            wall.elapsed().as_secs_f64()
        ),
        format!(
            "{} ms ({:.2} % of one core)",
            cpu_idle.as_millis(),
            100.0 * cpu_idle.as_secs_f64() / wall.elapsed().as_secs_f64()
        ),
    ));
    // The observation every reconcile pass makes: one batch per instance, concurrently.
    let (median, p90, cpu) = rt.block_on(observation_cost(&idle, 1000));
    table.push((
        "4 instances: one observation pass (1000 passes)".into(),
        format!(
            "median {:.2} ms, p90 {:.2} ms; CPU {:.2} ms a pass",
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3
        ),
    ));
    rt.block_on(idle.stop());
    let _ = std::fs::remove_dir_all(&dir);

    // 200 instances in one process: the model plus 200 listeners.
    let before = rss_kib();
    let dir = state_dir("many");
    let started = Instant::now();
    let many = rt
        .block_on(RunningSim::start(topology_of(200), &dir, None))
        .expect("start 200 instances");
    let took = started.elapsed();
    let after = rss_kib();
    assert_eq!(many.instances.len(), 200);
    table.push((
        "200 instances: time to start".into(),
        format!("{} ms", took.as_millis()),
    ));
    table.push((
        "200 instances: RSS after start".into(),
        format!(
            "{after} KiB (+{} KiB, {:.1} KiB per instance)",
            after.saturating_sub(before),
            after.saturating_sub(before) as f64 / 200.0
        ),
    ));
    rt.block_on(many.stop());
    let _ = std::fs::remove_dir_all(&dir);

    let width = table.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!(
        "\nsimulator figures ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        }
    );
    println!("{:-<1$}", "", width + 40);
    for (k, v) in &table {
        println!("{k:<width$}  {v}");
    }
}
