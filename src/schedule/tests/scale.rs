//! Long-lived rotations stay cheap: the answer is arithmetic from `start`, not a walk.

use std::time::Instant;

use super::*;
use crate::schedule::Every;

#[test]
fn four_weeks_of_an_hourly_rotation_started_in_2017_are_672_shifts() {
    let cal = calendar(
        rotation(
            "America/Chicago",
            Every::Hourly,
            1,
            "2017-01-01T00:00",
            &["a", "b"],
        ),
        vec![
            rule(Who::Rotation("ops".into())),
            Rule {
                who: contact("x"),
                days: Some([false, false, false, false, false, true, true]),
                from: Some(clock("10:00")),
                to: Some(clock("18:00")),
            },
        ],
        Some("lead"),
    );
    let started = Instant::now();
    let shifts = cal.shifts(
        "primary",
        &[],
        at("2028-06-01T05:00:00Z"),
        at("2028-06-29T05:00:00Z"),
    );
    let elapsed = started.elapsed();
    let rotation_shifts = shifts.iter().filter(|s| s.contact != "x").count();
    assert_eq!(rotation_shifts, 28 * 24);
    // Four weekends, Saturday and Sunday 10:00-18:00.
    assert_eq!(shifts.len() - rotation_shifts, 8);
    println!("shifts over 28 days of an hourly rotation: {elapsed:?}");
}

#[test]
fn oncall_ten_years_after_start_is_as_cheap_as_after_a_week() {
    let cal = calendar(
        rotation(
            "Europe/Berlin",
            Every::Hourly,
            1,
            "2018-01-01T00:00",
            &["a", "b", "c"],
        ),
        vec![rule(Who::Rotation("ops".into()))],
        None,
    );
    let started = Instant::now();
    for day in 0..100 {
        let t = at("2028-01-01T00:00:00Z").plus(std::time::Duration::from_secs(day * 86_399));
        let answer = cal.oncall("primary", &[], t).unwrap();
        assert!(answer.until.unwrap() > t);
    }
    println!(
        "100 oncall answers ten years after start: {:?}",
        started.elapsed()
    );
}
