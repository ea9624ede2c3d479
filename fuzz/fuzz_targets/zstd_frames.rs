//! cargo-fuzz target; the body lives in fuzz-harness (shared with the corpus smoke test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| envpack_fuzz_harness::zstd_frames(data));
