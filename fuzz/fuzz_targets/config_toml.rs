//! `alerts.toml` (and `tocsin check-config`): any text is parsed and validated, and a
//! refusal says where and what, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::config::load_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = load_str(text, None) {
        assert!(!errors.errors().is_empty(), "refused without a reason");
        for e in errors.errors() {
            assert!(!e.to_string().is_empty(), "an empty error");
        }
        let _ = errors.to_string();
    }
});
