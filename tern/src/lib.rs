//! tern: the all-in-one launcher (`tern start`) and the command-line tools (`tern pub`, `tern sub`,
//! `tern bench`, `tern passwd`).
//!
//! Built so far: [`bench`], the MQTT load generator behind `tern bench`. The launcher and the other
//! tools arrive with the issues that need them; `main.rs` only parses the command line and calls
//! into this library.

pub mod bench;
