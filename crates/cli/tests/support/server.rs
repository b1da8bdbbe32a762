//! `yitong serve` as a process on a free port: the URL it printed, plain HTTP GETs, Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `yitong serve` and the `host:port` it printed.
pub struct Server {
    child: Child,
    pub address: String,
    stdout: BufReader<std::process::ChildStdout>,
}

/// `yitong serve --listen 127.0.0.1:0 ARGS` with `data_dir` and `RUST_LOG=log` (stderr is
/// piped and read at the end: keep the log level low for long tests).
pub fn start(args: &[&str], data_dir: &std::path::Path, log: &str) -> Server {
    start_with_env(args, data_dir, log, &[])
}

/// [`start`] with these environment variables too.
pub fn start_with_env(args: &[&str], data_dir: &std::path::Path, log: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .envs(env.iter().copied())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("YITONG_DATA_DIR", data_dir)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("yitong starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("reads the first line");
    let Some(rest) = line.strip_prefix("yitong: wallet platform API at http://") else {
        let mut stderr = String::new();
        child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("stderr");
        panic!("no URL printed: {line:?}; stderr: {stderr}");
    };
    let address = rest.split('/').next().expect("host:port").to_owned();
    Server { child, address, stdout }
}

impl Server {
    /// `GET path` over a fresh connection: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_as(path, None)
    }

    /// `GET path` with the bearer `token`, if any.
    pub fn get_as(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.send("GET", path, token)
    }

    /// `method path` (no body) with the bearer `token`, if any, over a fresh connection.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout set");
        let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.address
        )
        .expect("sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("an answer");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        assert!(head.to_ascii_lowercase().contains("content-length:"), "{head}");
        (status, body.to_owned())
    }

    /// Ctrl-C, then the exit status and the rest of stdout and stderr.
    pub fn interrupt(mut self) -> (std::process::ExitStatus, String, String) {
        let killed = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(killed.success());
        let status = self.child.wait().expect("exits");
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).expect("stdout");
        let mut stderr = String::new();
        self.child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("stderr");
        (status, stdout, stderr)
    }
}

/// A test that fails mid-way leaves no server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
