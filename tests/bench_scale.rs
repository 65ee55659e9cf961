//! `pchat-operator bench scale` as a smoke test at 20 pools: the real kube-apiserver, 80
//! simulated instances, one operator process. The figures are printed, never judged by time;
//! what is asserted is what the command itself promises: every pool Ready, no write of any kind
//! in the steady state, one SQL batch per instance per pass, a lone pool switched three times
//! losing nothing, fewer status writes per switch than it has steps, every flipped pool
//! switched with its chat workload losing nothing acknowledged and its chat servers drained
//! and published again once (each outage timed), and every pool whose site went
//! away served from the other one, losing nothing acknowledged before the window it reported.

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn twenty_pools_converge_stay_quiet_switch_in_a_storm_losing_nothing_and_fail_over() {
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(["bench", "scale", "--pools", "20", "--steady-seconds", "35"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "exit {}: {stdout}\n{stderr}",
        out.status
    );
    let figures: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once('=')).collect();
    let figure = |key: &str| -> f64 {
        figures
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {stdout}"))
    };
    assert_eq!(figure("cold_start_ready_pools"), 20.0);
    assert!(figure("steady_passes") >= 20.0, "{stdout}");
    assert_eq!(figure("steady_sql_round_trips_per_pool_pass"), 4.0);
    assert_eq!(figure("steady_sql_writes"), 0.0);
    assert_eq!(figure("steady_api_writes"), 0.0);
    // The lone pool, switched there, back and there again, the storm's yardstick.
    assert_eq!(figure("lone_switches"), 3.0);
    assert_eq!(figure("lone_lost_messages"), 0.0);
    assert!(figure("lone_switch_seconds") > 0.0, "{stdout}");
    assert!(figure("storm_p95_over_lone_switch") > 0.0, "{stdout}");
    assert_eq!(figure("storm_ready_pools"), figure("storm_pools"));
    // A planned switch runs thirteen steps; what the next pass would observe again is left
    // for the turn's last pass, so it is written twice (the tail LSN, with the switch's start,
    // and the end), not once per pass, and the Secrets and ConfigMap are not read again for
    // each. At least the switch's start and its end are written.
    assert!(figure("storm_status_writes_per_switch") >= 2.0, "{stdout}");
    assert!(figure("storm_status_writes_per_switch") <= 3.0, "{stdout}");
    // Each turn reads the Lease, the two Secrets and the ConfigMap once: a switch takes a
    // few turns (the drain, the steps, the looks until Ready), not one per pass or per echo
    // of its own writes.
    assert!(figure("storm_api_reads_per_switch") >= 4.0, "{stdout}");
    assert!(figure("storm_api_reads_per_switch") <= 24.0, "{stdout}");
    // Every process a switch costs is read: the operator, this bench's simulator and the
    // apiserver each used CPU for the switches (etcd's share can be below /proc's 10 ms tick).
    for phase in ["lone", "storm"] {
        for role in ["operator", "simulator", "apiserver"] {
            let key = format!("{phase}_cpu_seconds_per_switch_{role}");
            assert!(figure(&key) > 0.0, "{key}: {stdout}");
        }
        assert!(figure(&format!("{phase}_cpu_seconds_per_switch_etcd")) >= 0.0);
    }
    assert!(figure("storm_busy_cores") > 0.0, "{stdout}");
    // The operator's turn metrics are read around the storm, per queue.
    for queue in ["finishing_transition", "ordinary"] {
        let key = format!("storm_turn_wait_seconds_per_switch_{queue}");
        assert!(figure(&key) >= 0.0, "{key}: {stdout}");
    }
    // Each planned switch drained its chat servers once and published the new site's once,
    // and the watch of the lists timed each outage.
    assert_eq!(figure("lone_drains"), 3.0);
    assert!(figure("lone_outage_seconds") > 0.0, "{stdout}");
    assert_eq!(figure("storm_drains"), figure("storm_pools"));
    assert!(figure("storm_outage_p95_seconds") > 0.0, "{stdout}");
    assert!(figure("storm_acknowledged_messages") > 0.0, "{stdout}");
    assert_eq!(figure("storm_lost_messages"), 0.0);
    assert_eq!(figure("forced_pools"), 4.0);
    assert_eq!(figure("forced_serving_pools"), figure("forced_pools"));
    assert!(figure("forced_acknowledged_messages") > 0.0, "{stdout}");
    assert_eq!(figure("forced_lost_outside_window_messages"), 0.0);
    // A forced failover waits out the policy's ten seconds of unreachability first.
    assert!(figure("forced_switch_p50_seconds") >= 10.0, "{stdout}");
    assert!(figure("cold_start_peak_rss_kib") > 0.0);
    assert!(!stdout.contains("failure="), "{stdout}");
}
