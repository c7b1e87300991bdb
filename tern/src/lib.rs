//! tern: the all-in-one launcher (`tern start`) and the command-line tools (`tern pub`, `tern sub`,
//! `tern bench`, `tern passwd`).
//!
//! Not built yet: each tool arrives with the issue that needs it. There is deliberately no binary
//! until the first of them exists.
