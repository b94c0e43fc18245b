//! The podman release a Quadlet profile targets (`podman_version`), and which Quadlet
//! keys each release knows. Quadlet refuses a unit with a key it does not know (it
//! generates no service for it) and podman 4 reads `Notify=healthy` as `no` without a
//! word, so berth writes only keys the target knows: a newer key becomes its `podman run`
//! option in `PodmanArgs=` where one exists, else the field is refused by validation.
//! Versions from containers/podman's `pkg/systemd/quadlet/quadlet.go` at each release tag.

use std::fmt;

/// A podman release, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodmanVersion {
    pub major: u32,
    pub minor: u32,
}

impl PodmanVersion {
    pub const fn new(major: u32, minor: u32) -> PodmanVersion {
        PodmanVersion { major, minor }
    }

    /// `"5.2"` (a patch level, `"5.2.1"`, is allowed and ignored).
    pub fn parse(text: &str) -> Option<PodmanVersion> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        match parts.next() {
            Some(patch) if patch.parse::<u32>().is_err() => None,
            _ if parts.next().is_some() => None,
            _ => Some(PodmanVersion { major, minor }),
        }
    }
}

impl fmt::Display for PodmanVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest release berth writes Quadlet units for: `NetworkName=` and `VolumeName=`
/// (4.7) keep the engine names every other backend uses.
pub const OLDEST: PodmanVersion = PodmanVersion::new(4, 7);

/// A `[Container]` key newer than [`OLDEST`]: the release that brought it, and the
/// `podman run` option that says the same on older ones (`None`: no such option).
pub struct NewerKey {
    pub key: &'static str,
    pub since: PodmanVersion,
    pub podman_option: Option<&'static str>,
}

pub const NEWER_CONTAINER_KEYS: &[NewerKey] = &[
    NewerKey {
        key: "Entrypoint",
        since: ENTRYPOINT,
        podman_option: None,
    },
    NewerKey {
        key: "StopTimeout",
        since: PodmanVersion::new(5, 0),
        podman_option: Some("--stop-timeout"),
    },
    NewerKey {
        key: "LogOpt",
        since: PodmanVersion::new(5, 2),
        podman_option: Some("--log-opt"),
    },
    NewerKey {
        key: "NetworkAlias",
        since: PodmanVersion::new(5, 2),
        podman_option: Some("--network-alias"),
    },
    NewerKey {
        key: "StopSignal",
        since: PodmanVersion::new(5, 2),
        podman_option: Some("--stop-signal"),
    },
    NewerKey {
        key: "AddHost",
        since: PodmanVersion::new(5, 3),
        podman_option: Some("--add-host"),
    },
];

/// `Entrypoint=`, which has no `PodmanArgs=` stand-in here (its value is a JSON array).
pub const ENTRYPOINT: PodmanVersion = PodmanVersion::new(5, 0);

/// `Notify=healthy`: a unit active only once its container is healthy (health-gated
/// ordering). Podman 4 reads it as `Notify=no`.
pub const NOTIFY_HEALTHY: PodmanVersion = PodmanVersion::new(5, 0);

/// `Driver=` in a `[Volume]` unit.
pub const VOLUME_DRIVER: PodmanVersion = PodmanVersion::new(4, 8);

/// The entry for `key`, when it is newer than [`OLDEST`].
pub fn newer_key(key: &str) -> Option<&'static NewerKey> {
    NEWER_CONTAINER_KEYS.iter().find(|k| k.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(PodmanVersion::parse("5.2"), Some(PodmanVersion::new(5, 2)));
        assert_eq!(
            PodmanVersion::parse("4.9.3"),
            Some(PodmanVersion::new(4, 9))
        );
        assert_eq!(PodmanVersion::parse("5"), None);
        assert_eq!(PodmanVersion::parse("5.x"), None);
        assert_eq!(PodmanVersion::parse("5.2.1.1"), None);
        assert!(PodmanVersion::new(4, 10) > PodmanVersion::new(4, 9));
        assert!(PodmanVersion::new(5, 0) > PodmanVersion::new(4, 99));
    }
}
