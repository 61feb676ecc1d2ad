use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use super::{
    Args,
    configuration::sweeps_between,
    database::runner_database_url,
    figures::{CpuSplit, TimeSpent, merged_quantile},
    median_index,
    phase::LuaResult,
    phases,
    usage::{command_stats, used_cpu_seconds},
    validate,
};
use crate::{
    args::{Environment, Seconds},
    wrk,
};

#[test]
fn the_runner_connects_as_its_own_user_to_the_same_server() {
    assert_eq!(
        runner_database_url("mysql://root@127.0.0.1:3306").unwrap(),
        "mysql://kicksync_bench@127.0.0.1:3306/kicksync_bench_drop"
    );
    assert_eq!(
        runner_database_url("mysql://root:secret@db.local:3307/").unwrap(),
        "mysql://kicksync_bench@db.local:3307/kicksync_bench_drop"
    );
    assert!(runner_database_url("postgres://root@127.0.0.1").is_err());
}

#[test]
fn the_median_round_is_the_middle_one_by_rate() {
    assert_eq!(median_index(&[30.0, 10.0, 20.0]), 2);
    assert_eq!(median_index(&[5.0]), 0);
    assert_eq!(
        median_index(&[40.0, 10.0, 30.0, 20.0]),
        3,
        "the lower middle of four"
    );
}

#[test]
fn phase_a_is_rounded_up_and_phase_b_is_the_rest() {
    let mut args = Args {
        units: 1_000,
        attempts: 100_000,
        buyers: 20_000,
        connections: 1_000,
        threads: 2,
        port: 3901,
        sell_out_percent: 20,
        db_connections: 50,
        checkout_limit: 1_000,
        phase_limit: Seconds(900),
        rounds: 3,
        redis_port: 6392,
        shard_sample: 2_000,
        only: Vec::new(),
        env: Environment {
            mysql_url: String::new(),
            redis_url: String::new(),
            runner: None,
            results_dir: PathBuf::new(),
            log_dir: PathBuf::new(),
        },
    };
    assert_eq!(phases(&args), (20_000, 80_000));
    assert!(validate(&args).is_ok());
    args.attempts = 1_001;
    assert_eq!(phases(&args), (201, 800));
    assert!(
        validate(&args).is_err(),
        "201 attempts cannot sell 1,000 units"
    );
}

#[test]
fn one_phase_quantiles_are_read_off_its_grid() {
    let grid = vec![
        (50.0, 1_000.0),
        (90.0, 2_000.0),
        (99.0, 5_000.0),
        (99.9, 9_000.0),
    ];
    assert!((merged_quantile(&[(10, &grid)], 50.0) - 1_000.0).abs() < 1e-9);
    assert!((merged_quantile(&[(10, &grid)], 99.0) - 5_000.0).abs() < 1e-9);
}

#[test]
fn merged_quantiles_weigh_each_phase_by_its_attempts() {
    // A fast big phase and a slow small one: the median is the big phase's.
    let fast: Vec<(f64, f64)> = (1..=200)
        .map(|i| (f64::from(i) * 0.5, f64::from(i)))
        .collect();
    let slow: Vec<(f64, f64)> = (1..=200)
        .map(|i| (f64::from(i) * 0.5, 1_000.0 + f64::from(i)))
        .collect();
    let median = merged_quantile(&[(80, &fast), (20, &slow)], 50.0);
    // 50 % of all is 62.5 % of the fast phase: its value at 62.5 is 125.
    assert!((median - 125.0).abs() < 1e-9, "{median}");
    let p90 = merged_quantile(&[(80, &fast), (20, &slow)], 90.0);
    // The fast phase is 80 % of all; 90 % reaches half-way into the slow phase.
    assert!((p90 - 1_100.0).abs() < 1e-9, "{p90}");
}

#[test]
fn redis_command_counts_are_read_from_commandstats() {
    let info = "# Commandstats\r\ncmdstat_evalsha:calls=2000,usec=9000,usec_per_call=4.50,\
                rejected_calls=0,failed_calls=0\r\ncmdstat_exists:calls=4000,usec=1200\r\n";
    let calls = command_stats(info);
    assert_eq!(calls.get("evalsha"), Some(&(2_000, 9_000)));
    assert_eq!(calls.get("exists"), Some(&(4_000, 1_200)));
}

#[test]
fn redis_cpu_is_read_from_info_cpu() {
    let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\n\
                used_cpu_sys_children:0.0\r\nused_cpu_user_children:9.0\r\n";
    let seconds = used_cpu_seconds(info).unwrap();
    assert!((seconds - 3.75).abs() < 1e-9, "{seconds}");
    assert_eq!(used_cpu_seconds("# CPU\r\n"), None);
}

#[test]
fn the_scripts_result_line_is_parsed() {
    let stdout = "Running 15m test @ http://127.0.0.1:3901/orders\n  2 threads and 1000 connections\n\
        DROP-RESULT {\"attempts\":10,\"responses\":10,\"unfinished_threads\":0,\"elapsed_us\":2000000,\
        \"statuses\":{\"201\":3,\"409\":6,\"429\":1},\"codes\":{\"SOLD_OUT\":6,\"RATE_LIMITED\":1},\
        \"latency_us\":{\"min\":100,\"mean\":150.5,\"max\":900,\"quantiles\":[[50,120],[90,300],[99,800]]},\
        \"errors\":{\"connect\":0,\"read\":0,\"write\":0,\"timeout\":0}}\n";
    let result = LuaResult::parse(stdout).unwrap();
    let figures = result.figures(
        wrk::SocketErrors::default(),
        TimeSpent {
            cores: CpuSplit::default(),
            cpu_us_per_attempt: CpuSplit::default(),
            redis_commands_per_attempt: BTreeMap::new(),
            redis_used_cpu_s: None,
            redis_exec: BTreeMap::new(),
        },
    );
    assert!((figures.attempts_per_s - 5.0).abs() < 1e-9);
    assert!((figures.p50_ms - 0.12).abs() < 1e-9);
    assert!((figures.p99_ms - 0.8).abs() < 1e-9);
    assert_eq!(figures.status_counts.created, 3);
    assert_eq!(figures.status_counts.conflict, 6);
    assert_eq!(figures.status_counts.other, 1);
    assert_eq!(figures.codes.get("SOLD_OUT"), Some(&6));
}

#[test]
fn sweeps_count_the_minute_marks_crossed() {
    let s = Duration::from_secs;
    assert_eq!(sweeps_between(s(5), s(20)), 0);
    assert_eq!(sweeps_between(s(50), s(70)), 1);
    assert_eq!(sweeps_between(s(10), s(200)), 3);
}
