//! Which engine berth drives: this machine's (`unix://`, the default), another one over
//! SSH (`ssh://user@server[:port]`, see [`super::ssh`]) or over TCP (`tcp://host:port`, with
//! TLS when `DOCKER_TLS_VERIFY` is set), from `--host` or else `DOCKER_HOST`, as the
//! docker CLI reads them.

use std::path::PathBuf;

use bollard::{API_DEFAULT_VERSION, Docker};

use super::ssh::{self, SshAddress};

/// Seconds a single engine request may take; the same as bollard's own default.
const TIMEOUT_SECONDS: u64 = 120;

/// An engine's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// This machine's engine: `DOCKER_HOST=unix://…` or the default socket.
    Local,
    /// This machine's engine at another socket (`--host unix:///path`).
    Unix(String),
    Ssh(SshAddress),
    Tcp {
        /// `host:port`.
        address: String,
        /// The folder holding `ca.pem`, `cert.pem` and `key.pem` when TLS is on.
        tls: Option<PathBuf>,
    },
}

impl Host {
    /// `explicit` (`--host`), else `DOCKER_HOST`, else this machine's engine.
    ///
    /// # Errors
    /// An address berth cannot use (an unknown scheme, a malformed `ssh://`).
    pub fn locate(explicit: Option<&str>) -> Result<Host, String> {
        let from_env = std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty());
        let (text, source) = match explicit {
            Some(text) => (text.to_string(), "--host"),
            None => match from_env {
                Some(text) => (text, "DOCKER_HOST"),
                None => return Ok(Host::Local),
            },
        };
        Host::parse(&text).map_err(|e| format!("{source}: {e}"))
    }

    /// Reads one address.
    ///
    /// # Errors
    /// An unknown scheme or a malformed address.
    pub fn parse(text: &str) -> Result<Host, String> {
        if text.starts_with("unix://") {
            return Ok(Host::Unix(text.to_string()));
        }
        if text.starts_with("ssh://") {
            return SshAddress::parse(text).map(Host::Ssh);
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let address = rest.trim_end_matches('/').to_string();
            if address.is_empty() || address.contains('/') {
                return Err(format!("{text:?} is not tcp://host:port"));
            }
            let tls = std::env::var("DOCKER_TLS_VERIFY")
                .ok()
                .filter(|v| !v.is_empty() && v != "0")
                .map(|_| cert_path());
            return Ok(Host::Tcp { address, tls });
        }
        Err(format!(
            "{text:?}: berth drives engines at unix://, ssh://user@host[:port] or tcp://host:port"
        ))
    }

    /// True when the engine is on another machine: berth's state then lives on it.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Host::Local | Host::Unix(_))
    }

    /// A client for this engine (no request made yet).
    ///
    /// # Errors
    /// The address or the TLS files cannot be used.
    pub fn client(&self) -> Result<Docker, String> {
        match self {
            Host::Local => Docker::connect_with_local_defaults().map_err(|e| e.to_string()),
            Host::Unix(path) => {
                Docker::connect_with_unix(path, TIMEOUT_SECONDS, API_DEFAULT_VERSION)
                    .map_err(|e| e.to_string())
            }
            Host::Ssh(address) => ssh::connect(address, TIMEOUT_SECONDS),
            Host::Tcp { address, tls: None } => {
                Docker::connect_with_http(address, TIMEOUT_SECONDS, API_DEFAULT_VERSION)
                    .map_err(|e| e.to_string())
            }
            Host::Tcp {
                address,
                tls: Some(dir),
            } => tls_client(address, dir),
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Local => write!(f, "the local engine"),
            Host::Unix(path) => write!(f, "{path}"),
            Host::Ssh(address) => write!(f, "{address}"),
            Host::Tcp { address, tls: None } => write!(f, "tcp://{address}"),
            Host::Tcp {
                address,
                tls: Some(_),
            } => write!(f, "tcp://{address} (TLS)"),
        }
    }
}

/// `DOCKER_CERT_PATH`, else `~/.docker`, as the docker CLI looks for its TLS files.
fn cert_path() -> PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

fn tls_client(address: &str, dir: &std::path::Path) -> Result<Docker, String> {
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        if !dir.join(file).is_file() {
            return Err(format!(
                "TLS is on (DOCKER_TLS_VERIFY) and {} is missing (DOCKER_CERT_PATH)",
                dir.join(file).display()
            ));
        }
    }
    Docker::connect_with_ssl(
        address,
        &dir.join("key.pem"),
        &dir.join("cert.pem"),
        &dir.join("ca.pem"),
        TIMEOUT_SECONDS,
        API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_docker_cli_reads_them() {
        assert_eq!(
            Host::parse("unix:///var/run/docker.sock"),
            Ok(Host::Unix("unix:///var/run/docker.sock".into()))
        );
        assert!(matches!(Host::parse("ssh://root@h:2222"), Ok(Host::Ssh(_))));
        assert!(matches!(
            Host::parse("tcp://10.0.0.5:2376/"),
            Ok(Host::Tcp { address, .. }) if address == "10.0.0.5:2376"
        ));
        assert!(Host::parse("npipe:////./pipe/docker_engine").is_err());
        assert!(Host::parse("tcp://").is_err());
    }
}
