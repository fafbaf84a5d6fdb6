//! The frame decoder between the evaluator and its workers: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wasmeval::internal::decode_frames(data);
});
