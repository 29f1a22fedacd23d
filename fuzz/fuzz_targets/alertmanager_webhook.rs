//! `POST /hooks/alertmanager`: any body, with and without a heartbeat alert configured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::source::alertmanager::parse;

fuzz_target!(|body: &[u8]| {
    for heartbeat in [None, Some("Watchdog")] {
        match parse(body, heartbeat) {
            Ok(p) => {
                // The title is announced on IRC and put in mail subjects.
                assert!(
                    !p.batch.title.chars().any(char::is_control),
                    "control character in the title {:?}",
                    p.batch.title
                );
                // The heartbeat proves the pipeline alive and never pages.
                if let Some(h) = heartbeat {
                    assert!(
                        p.batch
                            .alerts
                            .iter()
                            .all(|a| a.labels.get("alertname").as_deref() != Some(h)),
                        "the heartbeat became an incident alert"
                    );
                }
            }
            // The error is the 400's JSON body: it must render.
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
