//! Random rotations and instants: the point answer, the range answer and `until` agree.

use std::time::Duration;

use super::*;
use crate::schedule::{Every, Shift};

const ZONES: [&str; 5] = [
    "Australia/Lord_Howe",
    "America/Chicago",
    "Europe/Berlin",
    "UTC",
    "Asia/Kolkata",
];

/// Wall times inside a gap of each zone, so starts in gaps are drawn often, not by luck.
const GAP_STARTS: [&str; 3] = ["2027-10-03T02:15", "2027-03-14T02:30", "2027-03-28T02:30"];

/// splitmix64: a fixed seed keeps a failure reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn random_rotation(rng: &mut Rng) -> Rotation {
    let every = *rng.pick(&[Every::Hourly, Every::Daily, Every::Weekly, Every::Monthly]);
    let zone_index = rng.below(ZONES.len() as u64) as usize;
    let start = if zone_index < GAP_STARTS.len() && rng.below(4) == 0 {
        wall(GAP_STARTS[zone_index])
    } else {
        let month = jiff::civil::date(2020 + rng.below(11) as i16, 1 + rng.below(12) as i8, 1);
        // Monthly rotations often start on the 29th–31st, to be clamped in shorter months.
        let day = if every == Every::Monthly && rng.below(3) == 0 {
            (29 + rng.below(3) as i8).min(month.days_in_month())
        } else {
            1 + rng.below(28) as i8
        };
        month.with().day(day).build().unwrap().at(
            rng.below(24) as i8,
            *rng.pick(&[0, 15, 30, 45]),
            0,
            0,
        )
    };
    let count = 1 + rng.below(4) as usize;
    let members: Vec<&str> = (0..count)
        .map(|_| *rng.pick(&["a", "b", "c", "d"]))
        .collect();
    let shift = 1 + rng.below(5) as u32;
    let mut r = rotation(
        ZONES[zone_index],
        every,
        shift,
        "2020-01-01T00:00",
        &members,
    );
    r.start = start;
    if rng.below(3) == 0 {
        // A member list edited some time after the start.
        let from = r
            .handoff(0)
            .unwrap()
            .plus(Duration::from_secs(rng.below(86_400 * 400)));
        let count = 1 + rng.below(4) as usize;
        r.versions.push(crate::schedule::Members {
            from: Some(from),
            members: (0..count)
                .map(|_| rng.pick::<&str>(&["a", "b", "e"]).to_string())
                .collect(),
        });
    }
    r
}

fn covering(shifts: &[Shift], t: Timestamp) -> Option<&Shift> {
    shifts.iter().find(|s| s.start <= t && t < s.end)
}

#[test]
fn oncall_agrees_with_shifts_and_shifts_tile_the_range() {
    let mut rng = Rng(0x7EC5_1A5E);
    for case in 0..300 {
        let r = random_rotation(&mut rng);
        let first = r.handoff(0).unwrap();
        // A range near the start (sometimes before it) or years later.
        let from = first
            .minus(Duration::from_secs(86_400 * 3))
            .plus(Duration::from_secs(rng.below(86_400 * 365 * 4)));
        let days = match r.every {
            Every::Hourly => 1 + rng.below(6),
            _ => 1 + rng.below(120),
        };
        let to = from.plus(Duration::from_secs(86_400 * days + rng.below(86_400)));
        let shifts = r.shifts(from, to);
        let context = format!("case {case}: {r:?} over [{from}, {to})");

        // Tiling: from the later of `from` and the first handoff to `to`, no gap, no overlap.
        let begin = from.max(first);
        if begin < to {
            assert_eq!(shifts.first().map(|s| s.start), Some(begin), "{context}");
            assert_eq!(shifts.last().map(|s| s.end), Some(to), "{context}");
        }
        for pair in shifts.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{context}");
            assert_ne!(pair[0].contact, pair[1].contact, "unmerged: {context}");
        }

        let cal = calendar(r.clone(), vec![rule(Who::Rotation("ops".into()))], None);
        for _ in 0..12 {
            let t = from.plus(Duration::from_millis(
                rng.below(to.since(from).as_millis() as u64),
            ));
            let answer = cal.oncall("primary", &[], t).unwrap();
            let shift = covering(&shifts, t);
            let on: Vec<&str> = answer.contacts.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(
                on,
                shift
                    .map(|s| s.contact.as_str())
                    .into_iter()
                    .collect::<Vec<_>>(),
                "at {t}: {context}"
            );
            assert_eq!(
                r.member_at(t),
                shift.map(|s| s.contact.as_str()),
                "at {t}: {context}"
            );
            // until is the end of the covering shift (or the first handoff before start).
            let boundary = match shift {
                Some(s) => s.end,
                None => first,
            };
            if boundary < to {
                assert_eq!(answer.until, Some(boundary), "at {t}: {context}");
            } else {
                assert!(answer.until.is_none_or(|u| u >= to), "at {t}: {context}");
            }
        }
        // The schedule view of a one-rotation schedule is the rotation's view.
        let schedule_shifts = cal.shifts("primary", &[], from, to);
        assert_eq!(schedule_shifts, shifts, "{context}");
    }
}

fn random_rule(rng: &mut Rng) -> Rule {
    let who = if rng.below(2) == 0 {
        Who::Rotation("ops".into())
    } else {
        contact(rng.pick::<&str>(&["a", "b", "x", "y"]))
    };
    let days = (rng.below(2) == 0).then(|| std::array::from_fn(|_| rng.below(3) != 0));
    let (from, to) = if rng.below(3) == 0 {
        (None, None)
    } else {
        let mut time = || {
            jiff::civil::time(
                *rng.pick(&[0, 1, 2, 3, 9, 17, 22]),
                *rng.pick(&[0, 15, 30]),
                0,
                0,
            )
        };
        (Some(time()), Some(time()))
    };
    Rule {
        who,
        days,
        from,
        to,
    }
}

fn random_override(rng: &mut Rng, id: u64, around: Timestamp) -> crate::schedule::Override {
    use crate::schedule::Change;
    let person = |rng: &mut Rng| rng.pick(&["a", "b", "c", "x", "z"]).to_string();
    let change = match rng.below(3) {
        0 => Change::Add {
            contact: person(rng),
        },
        1 => Change::Remove {
            contact: person(rng),
        },
        _ => Change::Replace {
            contact: person(rng),
            with: person(rng),
        },
    };
    let from = around.plus(Duration::from_secs(rng.below(86_400 * 10)));
    crate::schedule::Override {
        id,
        change,
        from,
        to: from.plus(Duration::from_secs(1 + rng.below(86_400 * 3))),
    }
}

#[test]
fn schedule_answer_is_constant_until_until_and_matches_its_shifts() {
    let mut rng = Rng(0x5C4E_D01E);
    for case in 0..100 {
        let r = random_rotation(&mut rng);
        let first = r.handoff(0).unwrap();
        let rules = (0..1 + rng.below(3))
            .map(|_| random_rule(&mut rng))
            .collect();
        let fallback = (rng.below(2) == 0).then_some("lead");
        let mut cal = calendar(r, rules, fallback);
        let zone = tz(rng.pick::<&str>(&ZONES));
        cal.schedules.get_mut("primary").unwrap().time_zone = zone;
        let from = first.plus(Duration::from_secs(rng.below(86_400 * 400)));
        let to = from.plus(Duration::from_secs(86_400 * 14));
        let overrides: Vec<_> = (0..rng.below(4))
            .map(|id| random_override(&mut rng, id, from))
            .collect();
        let context = format!("case {case}: {cal:?} {overrides:?} over [{from}, {to})");
        let shifts = cal.shifts("primary", &overrides, from, to);
        let names_at = |t: Timestamp| -> Vec<String> {
            // The answer without `until`, so that probing stays cheap.
            let schedule = &cal.schedules["primary"];
            let mut n: Vec<String> = cal
                .answer(schedule, &overrides, t, true)
                .0
                .into_iter()
                .map(|c| c.name)
                .collect();
            n.sort();
            n
        };
        for _ in 0..10 {
            let t = from.plus(Duration::from_millis(
                rng.below(to.since(from).as_millis() as u64),
            ));
            let now = names_at(t);
            let mut from_shifts: Vec<String> = shifts
                .iter()
                .filter(|s| s.start <= t && t < s.end)
                .map(|s| s.contact.clone())
                .collect();
            from_shifts.sort();
            assert_eq!(now, from_shifts, "at {t}: {context}");
            let Some(until) = cal.oncall("primary", &overrides, t).unwrap().until else {
                continue;
            };
            assert_ne!(names_at(until), now, "until {until} at {t}: {context}");
            // Probe the interval (every 15 minutes near t, then spread) for an earlier change.
            let span = until.since(t).as_millis() as u64;
            for k in 1..40u64 {
                let probe = t.plus(Duration::from_millis(span * k / 40));
                assert_eq!(
                    names_at(probe),
                    now,
                    "changed at {probe} before until {until}: {context}"
                );
            }
        }
    }
}
