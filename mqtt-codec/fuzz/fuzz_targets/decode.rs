//! Fuzz target: arbitrary bytes through `decode` in both roles and every version state, with
//! every decoded packet re-encoded and decoded again. The body lives in `check.rs`, which the
//! crate's tests also run on the seed corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
