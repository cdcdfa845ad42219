//! A real S3-compatible server for tests: moto's `moto_server` (PyPI `moto[server]`, which
//! `scripts/test.sh` installs), a process of its own on a free port of 127.0.0.1, killed when
//! dropped. It checks no credentials: tests give some all the same, as a real bucket needs.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// `moto_server` on a free loopback port.
pub struct S3Server {
    child: Child,
    /// Its endpoint (`http://127.0.0.1:<port>`).
    pub url: String,
}

impl S3Server {
    /// Starts it and waits until it listens (30 s at most). Panics, saying how to install it,
    /// when `moto_server` cannot run: a test that needs it never passes without it.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]'; scripts/test.sh does)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }

    /// Creates the bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self.request("PUT", &format!("/{name}"));
        assert!(status.starts_with("HTTP/1.1 2"), "bucket {name} created: {status} {body}");
    }

    /// The keys of the objects in `bucket`, as its listing gives them (XML).
    pub fn listing(&self, bucket: &str) -> String {
        let (status, body) = self.request("GET", &format!("/{bucket}?list-type=2"));
        assert!(status.starts_with("HTTP/1.1 200"), "listing of {bucket}: {status} {body}");
        body
    }

    /// One HTTP/1.1 request without a body: the status line and the body of the answer.
    fn request(&self, method: &str, path: &str) -> (String, String) {
        let authority = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).expect("moto answers");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-length: 0\r\n\
             connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    }

    /// Writes, in `dir`, a mode-600 settings file of `AWS_*` lines for this server, with
    /// `secret` as the secret key; returns its path.
    pub fn settings_file(&self, dir: &Path, secret: &str) -> PathBuf {
        let path = dir.join("s3.env");
        let mut file = std::fs::File::create(&path).unwrap();
        write!(
            file,
            "AWS_ACCESS_KEY_ID=poco\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=us-east-1\n\
             AWS_ENDPOINT={}\nAWS_ALLOW_HTTP=true\n",
            self.url
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
