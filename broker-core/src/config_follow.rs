//! Following the config store on a broker node: the `log` level is applied at once; `mqtt` and
//! `sys` changes are reported as needing a restart (the broker's limits are fixed at start), so
//! `GET /configuration` shows which nodes run what.

use std::path::PathBuf;

use tern_config_store::{Follow, effective_config};

/// Sets the log level (the binary's telemetry handle).
pub type SetLevel = Box<dyn Fn(tern_config::LogLevel) -> Result<(), String> + Send>;

/// The follower of broker node `node_id`, re-reading `file` with the stored sections over it.
pub fn follower(
    node_id: &str,
    file: Option<PathBuf>,
    base_dir: PathBuf,
    env: tern_config::Env,
    set_level: Option<SetLevel>,
) -> Follow {
    Follow {
        service: "broker-core".into(),
        instance: node_id.to_owned(),
        sections: vec!["log", "mqtt", "sys"],
        apply: Box::new(move |section, snapshot| {
            let config = effective_config(file.as_deref(), &base_dir, &env, snapshot, &[section])?;
            match section {
                "log" => match &set_level {
                    Some(set) => set(config.log.level),
                    None => Ok(()),
                },
                _ => Err(format!("{section} settings take effect when the node restarts")),
            }
        }),
    }
}
