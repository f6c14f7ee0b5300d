//! A real nginx for the crawl benchmark: installed from Debian's packages when missing, configured with the
//! two throttling servers, started on 127.0.0.1 on free ports, and stopped when the guard drops.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// The two servers' limits: each response is slowed to about 145 ms by `limit_rate` (32 KiB at 220 KiB/s).
pub(super) const CONN_CAP: usize = 40;
pub(super) const RATE_PER_S: usize = 200;
const LIMIT_RATE: &str = "220k";

/// A running nginx; dropping it stops the server.
#[derive(Debug)]
pub(super) struct Nginx {
    child: Child,
    /// `(name, port)` of each server.
    pub(super) servers: Vec<(&'static str, u16)>,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too (a SIGKILL would orphan them); SIGKILL only if that
        // cannot be sent.
        let sent = Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The nginx binary, installing Debian's `nginx-light` when there is none.
pub(super) fn ensure_installed() -> Result<PathBuf> {
    let found = || {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    };
    if let Some(p) = found() {
        return Ok(p);
    }
    crate::apt::install("nginx-light")?;
    found().ok_or_else(|| "apt-get installed nginx-light but no nginx binary was found".into())
}

/// Starts nginx serving `site` from `dir`: `conn-cap` answers 429 above [`CONN_CAP`] connections, `rate-cap`
/// above [`RATE_PER_S`] requests a second (burst 20). Connections close after each response, so in-flight
/// requests are what the connection cap counts.
pub(super) fn start(nginx: &Path, dir: &Path, site: &Path) -> Result<Nginx> {
    for sub in ["logs", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let servers = vec![("conn-cap", free_port()?), ("rate-cap", free_port()?)];
    let (d, s) = (dir.display(), site.display());
    let conf = format!(
        "worker_processes 1;
error_log {d}/logs/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp;
  scgi_temp_path {d}/tmp;
  default_type text/html;
  keepalive_timeout 0;
  limit_conn_zone $server_port zone=conn:1m;
  limit_req_zone $server_port zone=req:1m rate={RATE_PER_S}r/s;
  server {{
    listen 127.0.0.1:{p0};
    root {s};
    limit_conn conn {CONN_CAP};
    limit_conn_status 429;
    limit_rate {LIMIT_RATE};
  }}
  server {{
    listen 127.0.0.1:{p1};
    root {s};
    limit_req zone=req burst=20 nodelay;
    limit_req_status 429;
    limit_rate {LIMIT_RATE};
  }}
}}
",
        p0 = servers[0].1,
        p1 = servers[1].1,
    );
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let server = Nginx { child, servers };
    let deadline = Instant::now() + Duration::from_secs(10);
    for &(name, port) in &server.servers {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
                return Err(format!(
                    "nginx's {name} server did not come up on port {port}:\n{log}"
                )
                .into());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(server)
}

fn free_port() -> Result<u16> {
    // The port is free when the listener closes; nginx binds it a moment later (a race no other user of
    // this machine's loopback is expected to win).
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
