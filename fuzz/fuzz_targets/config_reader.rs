//! The configuration readers (JSON Lines, JSON array, CSV): any bytes, no panic; an error
//! names a line within the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    for csv in [false, true] {
        let reader = std::io::Cursor::new(data.to_vec());
        let Ok(configs) = wasmeval::internal::input::Configs::from_reader("fuzz", reader, csv) else {
            continue;
        };
        for item in configs {
            if let Err(e) = item {
                assert!(e.line <= lines, "{e} is past the last line ({lines})");
            }
        }
    }
});
