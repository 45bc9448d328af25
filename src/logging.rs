//! The log filter shared by `run` and `register`.

use tracing_subscriber::EnvFilter;

/// The filter for `level` (a level or `EnvFilter` directives; `info` when invalid).
/// A plain level keeps the ZooKeeper client's own chatter (a line per ping at debug) at
/// warnings, unless it is `trace`.
pub fn filter(level: &str) -> EnvFilter {
    let plain = !level.contains('=') && !level.contains(',');
    let level = if plain && !level.eq_ignore_ascii_case("trace") {
        format!("{level},zookeeper_client=warn")
    } else {
        level.to_string()
    };
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info,zookeeper_client=warn"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_levels_quiet_the_zookeeper_client() {
        assert!(
            super::filter("debug")
                .to_string()
                .contains("zookeeper_client=warn")
        );
        assert!(
            !super::filter("trace")
                .to_string()
                .contains("zookeeper_client")
        );
        assert_eq!(
            super::filter("confsync=debug").to_string(),
            "confsync=debug"
        );
        // Whatever the text, a filter comes back (never a panic).
        let _ = super::filter("=,=");
    }
}
