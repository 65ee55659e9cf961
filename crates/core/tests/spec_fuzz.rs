//! No manifest text makes the loader or the validation panic: a surprise is an error naming
//! the field. One bad pool must never crash the process that serves the others.

use pchat_core::api::{load_pool_yaml, validate};
use proptest::prelude::*;

const POOL: &str = include_str!("../../../examples/pool.yaml");

/// Values a person (or a broken pipeline) might put in any field.
fn nasty_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("99999999999999999999h".to_string()),
        Just("9223372036854775807s".to_string()),
        Just("1e400s".to_string()),
        Just("-5m".to_string()),
        Just("0".to_string()),
        Just("''".to_string()),
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("99999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("\"\\u0000\"".to_string()),
        "[0-9]{1,30}(ns|us|ms|s|m|h)",
        "[0-9]{1,25}\\.[0-9]{1,25}h",
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn no_value_in_any_field_makes_loading_or_validation_panic(
        line_pick in any::<prop::sample::Index>(),
        value in nasty_value(),
    ) {
        let lines: Vec<&str> = POOL.lines().collect();
        let candidates: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(": ") && !l.trim_start().starts_with('#'))
            .map(|(i, _)| i)
            .collect();
        let target = candidates[line_pick.index(candidates.len())];
        let mutated: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == target {
                    let key_end = l.find(": ").unwrap();
                    format!("{}: {}\n", &l[..key_end], value)
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        if let Ok(pool) = load_pool_yaml(&mutated) {
            let _ = validate(&pool.spec);
        }
    }
}

#[test]
fn a_duration_too_large_for_the_clock_is_refused_naming_the_field() {
    let text = POOL.replace(
        "unreachableAfter: 60s",
        "unreachableAfter: 99999999999999999999h",
    );
    assert_ne!(text, POOL, "the example sets unreachableAfter");
    let err = load_pool_yaml(&text).expect_err("refused");
    assert!(
        err.to_string().contains("spec.failover.unreachableAfter"),
        "{err}"
    );
}
