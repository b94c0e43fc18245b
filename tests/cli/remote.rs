//! plan, apply, rollback, down and generations against a remote engine: berth reaches
//! this machine's engine through a real OpenSSH server (Debian's openssh-server, started
//! on a loopback port with throwaway keys in the test's folder), as it would reach a
//! server elsewhere with `--host ssh://user@server`. Nothing under ~/.ssh is read or
//! written: the client gets `-F none`, its key and a known_hosts file from the test.
//!
//! The "remote" host is this machine, so the tests can look at what berth left on it:
//! `/var/lib/berth/<stack>` (its state there) and the `berth-lock.<stack>` container.
//! Without sshd (or an engine) these tests say so and pass, unless BERTH_REQUIRE_DOCKER=1,
//! where they fail: CI installs openssh-server with scripts/install-validators.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Rig, docker, docker_status, generation_numbers};

const SSHD: &str = "/usr/sbin/sshd";

/// An OpenSSH server on 127.0.0.1 that lets root in with one throwaway key.
pub(crate) struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    ssh_command: String,
}

impl Sshd {
    /// `None` (after a loud message) when sshd is missing and not required. `test` is
    /// the test's path (`remote::…`), for the skip log.
    pub(crate) fn start(test: &str) -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var("BERTH_REQUIRE_DOCKER").as_deref() != Ok("1"),
                "BERTH_REQUIRE_DOCKER=1 but {SSHD} is missing (scripts/install-validators installs openssh-server)"
            );
            eprintln!("\n!!! SKIPPED: no {SSHD}; {test} did not run !!!\n");
            if let Some(log) = std::env::var_os("BERTH_SKIP_LOG") {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(log)
                    .expect("open BERTH_SKIP_LOG");
                file.write_all(format!("{test}\n").as_bytes())
                    .expect("write BERTH_SKIP_LOG");
            }
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-sshd-")
            .tempdir()
            .expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        for key in ["host_key", "client_key"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f"])
                .arg(path(key))
                .status()
                .expect("run ssh-keygen");
            assert!(made.success(), "ssh-keygen {key} failed");
        }
        let read = |name: &str| std::fs::read_to_string(path(name)).expect("read key");
        std::fs::write(path("authorized_keys"), read("client_key.pub")).expect("write keys");
        // sshd refuses to start without its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let port = free_port();
        std::fs::write(
            path("known_hosts"),
            format!("[127.0.0.1]:{port} {}", read("host_key.pub")),
        )
        .expect("write known_hosts");
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel INFO\n",
                path("host_key"),
                path("sshd.pid"),
                path("authorized_keys"),
            ),
        )
        .expect("write sshd_config");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its log (the readiness probe below makes it complain) stays in the folder.
            .stderr(std::fs::File::create(path("sshd.log")).expect("create sshd.log"))
            .spawn()
            .expect("start sshd");
        let ssh_command = format!(
            "ssh -F none -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR",
            path("client_key"),
            path("known_hosts"),
        );
        let sshd = Sshd {
            child,
            port,
            dir,
            ssh_command,
        };
        sshd.wait_until_listening();
        Some(sshd)
    }

    /// The address berth gets with `--host`.
    pub(crate) fn url(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// How many times a client has logged in so far (sshd logs each at INFO).
    pub(crate) fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("sshd.log"))
            .expect("read sshd.log")
            .lines()
            .filter(|line| line.contains("Accepted publickey"))
            .count()
    }

    /// What berth runs instead of plain `ssh` (`BERTH_SSH_COMMAND`).
    pub(crate) fn ssh_command(&self) -> &str {
        &self.ssh_command
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {} within 20 s (config in {})",
                self.port,
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the kernel's pick, released for sshd to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A rig whose berth goes through ssh, or `None` when the test cannot run here.
fn remote_rig(stack: &str, test: &str) -> Option<Rig> {
    Rig::through_ssh(stack, &format!("remote::{test}"))
}

#[test]
fn plan_apply_rollback_generations_and_down_go_through_ssh() {
    let Some(rig) = remote_rig(
        "bt-ssh",
        "plan_apply_rollback_generations_and_down_go_through_ssh",
    ) else {
        return;
    };
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("container bt-ssh-db-1");
    assert!(rig.containers().is_empty(), "plan created containers");

    rig.set_message("first");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("applied: generation 1");
    assert_eq!(rig.health("api"), "healthy");
    assert_eq!(
        rig.exec("api", &["sh", "-c", "echo $MESSAGE"]).trim(),
        "first"
    );
    // The state is on the engine's host, shared by whoever applies there; none on this side.
    assert!(
        rig.host_state()
            .join("none/generations/1/generation.json")
            .is_file(),
        "no generation 1 in {}",
        rig.host_state().display()
    );
    assert!(!rig.state().exists(), "berth wrote a local state folder");
    assert!(
        !docker_status(&["inspect", "berth-lock.bt-ssh"]),
        "the lock container outlived the apply"
    );

    rig.set_message("second");
    rig.berth("plan", &[]).code(1).stdout_contains("api");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("applied: generation 2");
    assert_eq!(
        rig.exec("api", &["sh", "-c", "echo $MESSAGE"]).trim(),
        "second"
    );

    // A fresh working copy each time: rollback finds generation 1 on the host.
    rig.berth("rollback", &["--profile", "none"]).code(0);
    assert_eq!(
        rig.exec("api", &["sh", "-c", "echo $MESSAGE"]).trim(),
        "first"
    );
    let generations = rig.berth("generations", &["--profile", "none"]);
    generations.code(0);
    assert_eq!(generation_numbers(&generations.stdout), [1, 2, 3]);

    rig.berth("down", &[])
        .code(0)
        .stdout_contains("volumes kept");
    assert!(rig.containers().is_empty(), "down left containers");
    assert!(!rig.volumes().trim().is_empty(), "down removed the volume");
}

#[test]
fn the_lock_on_the_host_names_its_holder_and_break_lock_takes_it() {
    let Some(rig) = remote_rig(
        "bt-sshlock",
        "the_lock_on_the_host_names_its_holder_and_break_lock_takes_it",
    ) else {
        return;
    };
    // Another operator's apply, as berth leaves it on the host while it runs.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 125;
    rig.berth("apply", &[]).code(0);
    docker(&[
        "create",
        "--name",
        "berth-lock.bt-sshlock",
        "--label",
        "berth.lock.holder=pid 4242 on laptop-b",
        "--label",
        &format!("berth.lock.since={since}"),
        "berth/state:1",
        "lock",
    ]);
    rig.set_message("changed");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("stack `bt-sshlock` is being applied by another berth")
        .stderr_contains("(pid 4242 on laptop-b, for 2m ")
        .stderr_contains("container berth-lock.bt-sshlock on ssh://root@127.0.0.1:");
    rig.berth("apply", &["--break-lock"])
        .code(0)
        .stdout_contains("applied: generation 2");
    assert!(
        !docker_status(&["inspect", "berth-lock.bt-sshlock"]),
        "the broken lock is still there"
    );
}

#[test]
fn an_unreachable_ssh_host_is_an_error_that_names_it() {
    let Some(rig) = Rig::new("bt-sshbad") else {
        return;
    };
    let Some(sshd) = Sshd::start("remote::an_unreachable_ssh_host_is_an_error_that_names_it")
    else {
        return;
    };
    // The server's client settings, and a port nothing listens on.
    let port = free_port();
    let output = rig.berth_env(
        "plan",
        &["--host", &format!("ssh://root@127.0.0.1:{port}")],
        &[("BERTH_SSH_COMMAND", sshd.ssh_command())],
    );
    output.code(2).stderr_contains(&format!(
        "connecting to the Docker engine (ssh://root@127.0.0.1:{port})"
    ));
    rig.berth("plan", &["--host", "ftp://example"])
        .code(2)
        .stderr_contains("--host: \"ftp://example\"");
}

/// A TLS-terminating proxy in front of this machine's engine socket, as `dockerd
/// --tlsverify` would be: it asks for a client certificate signed by the test's CA.
const TLS_PROXY: &str = r#"
import os, socket, ssl, sys, threading
port_file, cert, key, ca = sys.argv[1:5]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(ca)
context.verify_mode = ssl.CERT_REQUIRED
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
with open(port_file + ".partial", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(port_file + ".partial", port_file)

def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(raw):
    try:
        tls = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    engine = socket.socket(socket.AF_UNIX)
    engine.connect("/var/run/docker.sock")
    threading.Thread(target=pipe, args=(tls, engine), daemon=True).start()
    pipe(engine, tls)

while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"#;

/// The proxy and the throwaway CA, server and client certificates it uses.
struct TlsProxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TlsProxy {
    fn start() -> TlsProxy {
        let dir = tempfile::Builder::new()
            .prefix("berth-tls-")
            .tempdir()
            .expect("temp dir");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca-key.pem",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=berth-test-ca",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1\n",
        )
        .expect("ext");
        std::fs::write(
            dir.path().join("client.ext"),
            "extendedKeyUsage=clientAuth\n",
        )
        .expect("ext");
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=berth-test")] {
            openssl(
                &[
                    &["req"][..],
                    &ec,
                    &[
                        "-keyout",
                        &format!("{name}-key.pem"),
                        "-out",
                        &format!("{name}.csr"),
                        "-subj",
                        subject,
                    ],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &format!("{name}-cert.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        // The docker CLI's names for the client's files, in DOCKER_CERT_PATH.
        let client = dir.path().join("client");
        std::fs::create_dir_all(&client).expect("mkdir client");
        for (from, to) in [
            ("ca.pem", "ca.pem"),
            ("client-cert.pem", "cert.pem"),
            ("client-key.pem", "key.pem"),
        ] {
            std::fs::copy(dir.path().join(from), client.join(to)).expect("copy cert");
        }
        let port_file = dir.path().join("port");
        let child = Command::new("python3")
            .args(["-c", TLS_PROXY])
            .arg(&port_file)
            .args(["server-cert.pem", "server-key.pem", "ca.pem"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the TLS proxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().expect("port");
            }
            assert!(Instant::now() < deadline, "the TLS proxy did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        TlsProxy { child, port, dir }
    }

    /// DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for berth.
    fn env(&self) -> [(&'static str, String); 3] {
        [
            ("DOCKER_HOST", format!("tcp://127.0.0.1:{}", self.port)),
            ("DOCKER_TLS_VERIFY", "1".into()),
            (
                "DOCKER_CERT_PATH",
                self.dir.path().join("client").display().to_string(),
            ),
        ]
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tcp_engine_with_tls_is_applied_to_with_the_client_certificate() {
    let Some(rig) = Rig::new("bt-tls") else {
        return;
    };
    let proxy = TlsProxy::start();
    let env = proxy.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    rig.berth_env("plan", &[], &env)
        .code(1)
        .stdout_contains("container bt-tls-db-1");
    rig.berth_env("apply", &[], &env)
        .code(0)
        .stdout_contains("applied: generation 1");
    assert_eq!(rig.health("api"), "healthy");
    // A remote engine: the state went to its host, not to --state-dir.
    assert!(rig.host_state().join("none/generations/1").is_dir());
    assert!(!rig.state().exists(), "berth wrote a local state folder");
    rig.berth_env("down", &[], &env).code(0);

    // Without the client key the engine is not reached, and berth says which file is missing.
    std::fs::remove_file(proxy.dir.path().join("client/key.pem")).expect("rm key");
    rig.berth_env("plan", &[], &env)
        .code(2)
        .stderr_contains("key.pem is missing (DOCKER_CERT_PATH)");
}

#[test]
fn ctrl_c_at_the_terminal_rolls_back_through_ssh_and_releases_the_lock_on_the_host() {
    let Some(rig) = remote_rig(
        "bt-sshint",
        "remote::ctrl_c_at_the_terminal_rolls_back_through_ssh_and_releases_the_lock_on_the_host",
    ) else {
        return;
    };
    // api's second version never turns healthy (its probe fails inside a start period).
    let module = |probe: &str| {
        format!(
            r#"    api = IMAGE & {{
      command = ["sleep", "100000"],
      healthcheck = {{ test = ["{probe}"], interval = "1s", timeout = "5s", retries = 3, start_period = "10m" }},
    }},"#
        )
    };
    rig.write_module(&module("true"), "");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 1");
    let good_hash = rig.label("api", "berth.config-hash");
    rig.write_module(&module("false"), "");
    let api = rig.id("api");
    let sshd = Sshd::start(
        "remote::ctrl_c_at_the_terminal_rolls_back_through_ssh_and_releases_the_lock_on_the_host",
    )
    .expect("sshd");
    let mut command = crate::support::berth_command();
    command
        .args([
            "apply",
            "--stack",
            "bt-sshint",
            "--no-profile",
            "--yes",
            "--timeout",
            "10m",
        ])
        .args(["--host", &sshd.url()])
        .env("BERTH_SSH_COMMAND", sshd.ssh_command())
        .env("XDG_CONFIG_HOME", rig.root().join("config"))
        .current_dir(rig.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A process group of its own, as a shell gives a foreground job: the signal below
    // reaches every process in it, as Ctrl-C at a terminal does.
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    let child = command.spawn().expect("spawn berth");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = rig.id("api");
        if !now.is_empty() && now != api && rig.health("api") == "starting" {
            break;
        }
        assert!(Instant::now() < deadline, "api was never recreated");
        std::thread::sleep(Duration::from_millis(100));
    }
    let group = format!("-{}", child.id());
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .expect("kill")
            .success()
    );
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("rolled back to generation 1"),
        "berth lost the engine with its ssh: {stderr}"
    );
    assert_eq!(rig.health("api"), "healthy");
    assert_eq!(rig.label("api", "berth.config-hash"), good_hash);
    assert!(
        !docker_status(&["inspect", "berth-lock.bt-sshint"]),
        "the interrupted apply left its lock on the host"
    );
}

/// A berth of this machine killed outright (SIGKILL: no handler runs) leaves its lock
/// container on the host; the next apply from this machine sees that its holder is gone,
/// says so and takes the lock over. A holder still running keeps it.
#[test]
fn a_lock_left_by_a_killed_berth_of_this_machine_is_taken_over() {
    let Some(rig) = remote_rig(
        "bt-sshdead",
        "a_lock_left_by_a_killed_berth_of_this_machine_is_taken_over",
    ) else {
        return;
    };
    rig.berth("apply", &[]).code(0);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    // A pid no process of this machine can have: one past the kernel's largest (a pid of
    // a process that just exited could be taken again by the time berth looks).
    let dead: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse::<u64>()
        .expect("a number")
        + 1;
    let lock = |holder: &str| {
        docker(&[
            "create",
            "--name",
            "berth-lock.bt-sshdead",
            "--label",
            &format!("berth.lock.holder={holder}"),
            "--label",
            "berth.lock.since=1",
            "berth/state:1",
            "lock",
        ]);
    };
    // Still running (this test's own process): the lock stays.
    lock(&format!("pid {} on {hostname}", std::process::id()));
    rig.set_message("changed");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("stack `bt-sshdead` is being applied by another berth");
    docker(&["rm", "-f", "berth-lock.bt-sshdead"]);
    lock(&format!("pid {dead} on {hostname}"));
    rig.berth("apply", &[])
        .code(0)
        .stderr_contains("taking over the lock berth-lock.bt-sshdead on ssh://root@127.0.0.1:")
        .stderr_contains(&format!(
            "its holder (pid {dead} on {hostname}) is no longer running"
        ))
        .stdout_contains("applied: generation 2");
    assert!(
        !docker_status(&["inspect", "berth-lock.bt-sshdead"]),
        "the lock is still there after the apply"
    );
}

/// The connections ride on one SSH session (ControlMaster) that outlives the command: a
/// plan right after an apply logs in no more, where without multiplexing every command
/// (and, timing allowing, every connection) logs in again. How many logins one apply
/// makes depends on how its first connections race for the master, so only the plans'
/// are counted exactly.
#[test]
fn the_connections_of_a_command_share_one_ssh_session() {
    let Some(rig) = remote_rig(
        "bt-sshmux",
        "the_connections_of_a_command_share_one_ssh_session",
    ) else {
        return;
    };
    let sshd = rig.sshd().expect("through ssh");
    let before = sshd.logins();
    rig.berth("apply", &[]).code(0);
    let after_apply = sshd.logins();
    assert!(after_apply > before, "the apply never logged in");
    rig.berth("plan", &[]).code(0);
    rig.berth("plan", &[]).code(0);
    assert_eq!(
        sshd.logins(),
        after_apply,
        "the plans should ride on the apply's session"
    );
    rig.berth_env("plan", &[], &[("BERTH_SSH_MULTIPLEX", "0")])
        .code(0);
    assert!(
        sshd.logins() > after_apply,
        "a plan without multiplexing logged in no more"
    );
}
