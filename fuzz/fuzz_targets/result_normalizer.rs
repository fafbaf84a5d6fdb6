//! The normalization of a run function's result text: any text, no panic, and what it
//! accepts reads back the same after a round trip through JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(normalized) = wasmeval::output::parse_result(text) {
        let json = normalized.objective.to_json();
        let again = wasmeval::Objective::from_json(&json).map(|o| o.to_json());
        assert_eq!(again.as_ref(), Some(&json), "{json} does not read back");
    }
});
