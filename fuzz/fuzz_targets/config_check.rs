//! The fast validation pass and the reader agree: for any bytes, `validate_reader` fails
//! exactly where reading the configurations fails (same line, same message), and otherwise
//! counts as many configurations as the reader yields.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for csv in [false, true] {
        let checked =
            wasmeval::internal::input::validate_reader("fuzz", std::io::Cursor::new(data.to_vec()), csv);
        let read = wasmeval::internal::input::Configs::from_reader(
            "fuzz",
            std::io::Cursor::new(data.to_vec()),
            csv,
        )
        .and_then(|configs| configs.map(|c| c.map(drop)).collect::<Result<Vec<()>, _>>());
        match (checked, read) {
            (Ok(n), Ok(items)) => assert_eq!(n, items.len() as u64),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("the check says {a:?}, the reader {:?}", b.map(|v| v.len())),
        }
    }
});
