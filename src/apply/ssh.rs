//! The engine of a remote host over SSH, the way the docker CLI reaches it: each HTTP
//! connection is one `ssh [-p PORT] USER@HOST docker system dial-stdio` process, whose
//! stdin and stdout carry the engine API. Nothing of ours runs on the host, and the
//! operator's own ssh (config, agent, known_hosts, jump hosts) authenticates.
//!
//! `BERTH_SSH_COMMAND` replaces the `ssh` word (split like a shell would, e.g. `ssh -F
//! cfg -i key`), which is how the tests point it at a throwaway server and key.
//!
//! The connections share one SSH session (OpenSSH's ControlMaster, socket
//! `~/.ssh/berth-%C`, kept 60 s after the last use): an apply opens many connections, and
//! each would otherwise pay a key exchange and an authentication. `BERTH_SSH_MULTIPLEX=0`,
//! or a command line that sets ControlMaster or ControlPath itself, turns this off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

/// Requests in flight at once (each may need a new ssh connection); under sshd's
/// default MaxStartups of 10.
const MAX_OPENING: usize = 8;

/// `ssh://[user@]host[:port]`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAddress {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// A bollard client whose every connection is a fresh `docker system dial-stdio` over ssh;
/// hyper keeps idle ones for the next request, so one apply opens only a few.
///
/// # Errors
/// `BERTH_SSH_COMMAND` is not a command line.
pub fn connect(address: &SshAddress, timeout_seconds: u64) -> Result<Docker, String> {
    let connector = SshConnector {
        argv: ssh_argv(address)?,
    };
    // The body type is bollard's own (crate-private), so it is left to inference.
    let client = Client::builder(TokioExecutor::new()).build(connector);
    // sshd drops new connections beyond MaxStartups (10 unauthenticated at once by
    // default), and apply asks about every service at once: a request waits for a permit
    // until its response starts, so at most this many connections are ever being opened.
    let in_flight = Arc::new(Semaphore::new(MAX_OPENING));
    let transport = move |request: BollardRequest| {
        let client = client.clone();
        let in_flight = Arc::clone(&in_flight);
        async move {
            let _permit = in_flight.acquire_owned().await;
            client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://engine"),
        timeout_seconds,
        API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}

impl SshAddress {
    /// Reads `ssh://[user@]host[:port]` (a trailing `/` is allowed).
    ///
    /// # Errors
    /// Not that shape.
    pub fn parse(text: &str) -> Result<SshAddress, String> {
        let bad = || format!("{text:?} is not ssh://[user@]host[:port]");
        let rest = text.strip_prefix("ssh://").ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, rest) = match rest.split_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
            Some(_) => return Err(bad()),
            None => (None, rest),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad());
        }
        Ok(SshAddress {
            user,
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for SshAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ssh://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Opens connections by starting ssh.
#[derive(Clone)]
struct SshConnector {
    argv: Vec<String>,
}

impl tower_service::Service<http::Uri> for SshConnector {
    type Response = TokioIo<DialStdio>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let argv = self.argv.clone();
        Box::pin(async move { DialStdio::spawn(&argv).map(TokioIo::new) })
    }
}

/// One ssh process: its stdout is what the engine says, its stdin what we say.
struct DialStdio {
    /// Killed when the connection is dropped (`kill_on_drop`).
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl DialStdio {
    fn spawn(argv: &[String]) -> io::Result<DialStdio> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::other("empty ssh command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // ssh's own complaints (host key, password prompts refused) reach the operator.
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C at the terminal goes to berth alone, which
            // still needs the engine to roll back; ssh would otherwise die with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::other(format!("starting {program}: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("ssh has no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("ssh has no stdout"))?;
        Ok(DialStdio {
            _child: child,
            stdin,
            stdout,
        })
    }
}

impl Connection for DialStdio {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for DialStdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for DialStdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// `ssh [multiplexing] [-p PORT] [-l USER] -- HOST docker system dial-stdio`, with
/// `BERTH_SSH_COMMAND` in place of `ssh` when set.
fn ssh_argv(address: &SshAddress) -> Result<Vec<String>, String> {
    let mut argv = match std::env::var("BERTH_SSH_COMMAND") {
        Ok(command) if !command.trim().is_empty() => {
            shell_words::split(&command).map_err(|e| format!("BERTH_SSH_COMMAND: {e}"))?
        }
        _ => vec!["ssh".to_string()],
    };
    let chosen = argv
        .iter()
        .any(|word| word.contains("ControlMaster") || word.contains("ControlPath"));
    let wanted = std::env::var("BERTH_SSH_MULTIPLEX").as_deref() != Ok("0");
    if wanted
        && !chosen
        && let Some(folder) = control_folder()
    {
        argv.extend(multiplexing(&folder));
    }
    if let Some(port) = address.port {
        argv.extend(["-p".to_string(), port.to_string()]);
    }
    if let Some(user) = &address.user {
        argv.extend(["-l".to_string(), user.clone()]);
    }
    argv.extend(["--", &address.host, "docker", "system", "dial-stdio"].map(str::to_string));
    Ok(argv)
}

/// Options that share one SSH session among the connections: the first becomes the
/// master (in the background, so it outlives the connection that opened it), the others
/// ride on it.
fn multiplexing(folder: &std::path::Path) -> Vec<String> {
    [
        "-o".to_string(),
        "ControlMaster=auto".to_string(),
        "-o".to_string(),
        format!("ControlPath={}/berth-%C", folder.display()),
        "-o".to_string(),
        "ControlPersist=60".to_string(),
    ]
    .to_vec()
}

/// `~/.ssh`, made (0700, as ssh makes it) when missing; `None` without a home, or when it
/// cannot be made: ssh then opens a session per connection, as before.
fn control_folder() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    let folder = std::path::Path::new(&home).join(".ssh");
    if !folder.is_dir() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&folder)
            .ok()?;
    }
    Some(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ssh_address_reads_as_docker_writes_it() {
        assert_eq!(
            SshAddress::parse("ssh://root@10.0.0.5:2222"),
            Ok(SshAddress {
                user: Some("root".into()),
                host: "10.0.0.5".into(),
                port: Some(2222),
            })
        );
        assert_eq!(
            SshAddress::parse("ssh://prod-lite/").map(|a| a.to_string()),
            Ok("ssh://prod-lite".into())
        );
        for bad in ["ssh://", "ssh://@h", "ssh://h:port", "tcp://h", "ssh://a b"] {
            assert!(SshAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
