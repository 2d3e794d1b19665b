//! Real protocol peers on 127.0.0.1 for the second-factor tests: aiosmtpd (SMTP, writing a
//! maildir), moto (the SNS endpoint) and `scripts/peers/voice_server.py` (SendVoiceMessage),
//! each started by the test that uses it and killed when it ends.
//!
//! Shared by the delivery driver tests and the end-to-end tests. The Python peers come from
//! `scripts/peers/install` (idempotent; it prints the interpreter).
//! When they cannot be installed, tests needing them fail under `CI=true` and are skipped with a
//! note otherwise. `SEKIMORI_PEERS_PYTHON` names an interpreter that already has them.

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The Python interpreter with the peers, installed once per test run; `None` means skip.
pub fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        if let Ok(python) = std::env::var("SEKIMORI_PEERS_PYTHON") {
            return Ok(PathBuf::from(python));
        }
        let script = workspace_root().join("scripts/peers/install");
        let output = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .ok_or_else(|| "the install script printed no interpreter".to_owned())
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if in_ci() => panic!("test peers unavailable under CI=true: {why}"),
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "note: skipping a peer test, the test peers are unavailable: {why}"
            );
            None
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (nothing listens on it).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A peer process, killed (and reaped) when dropped, even on panic.
pub struct Peer {
    name: &'static str,
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Peer {
    /// Starts `python args…` (with `{port}` replaced) and waits until the port accepts
    /// connections.
    pub fn start(name: &'static str, python: &Path, args: &[&str], dir: &Path) -> Peer {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let child = Command::new(python)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("peer log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} peer: {e}"));
        let mut peer = Peer {
            name,
            child,
            port,
            log,
        };
        peer.wait_until_listening();
        peer
    }

    /// aiosmtpd delivering every message into the maildir `maildir`.
    pub fn smtp(python: &Path, maildir: &Path, dir: &Path) -> Peer {
        let maildir = maildir.to_string_lossy().into_owned();
        Peer::start(
            "aiosmtpd",
            python,
            &[
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                "127.0.0.1:{port}",
                "-c",
                "aiosmtpd.handlers.Mailbox",
                &maildir,
            ],
            dir,
        )
    }

    /// moto's server (SNS and the rest of its AWS mock).
    pub fn moto(python: &Path, dir: &Path) -> Peer {
        Peer::start(
            "moto",
            python,
            &["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"],
            dir,
        )
    }

    /// The voice stand-in speaking SendVoiceMessage and recording requests at `/requests`.
    pub fn voice(python: &Path, dir: &Path) -> Peer {
        let script = workspace_root().join("scripts/peers/voice_server.py");
        let script = script.to_string_lossy().into_owned();
        Peer::start("voice", python, &[&script, "{port}"], dir)
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the {} peer exited ({status}): {}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the {} peer did not listen on port {} within 60 s",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every mail in a maildir, decoded by Python's e-mail package (MIME words, transfer encoding):
/// `[{"to", "from", "subject", "body"}]`, oldest file name first.
pub fn read_maildir(python: &Path, maildir: &Path) -> Vec<serde_json::Value> {
    let decode = r#"
import email, email.policy, glob, json, sys
out = []
for path in sorted(glob.glob(sys.argv[1] + "/new/*")):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "body": m.get_content()})
print(json.dumps(out))
"#;
    let output = Command::new(python)
        .args(["-c", decode, &maildir.to_string_lossy()])
        .output()
        .expect("python decodes the maildir");
    serde_json::from_slice(&output.stdout).expect("decoded mails")
}

/// The first run of `len` ASCII digits in `text` that is not part of a longer run.
pub fn find_code(text: &str, len: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == len {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}
