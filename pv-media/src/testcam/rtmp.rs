//! An RTMP endpoint for tests: nginx with Debian's `libnginx-mod-rtmp`, one process in a
//! temporary prefix, listening on a free 127.0.0.1 port, accepting publishers from loopback
//! only. [`RtmpServer::stop`] kills it (the publisher's connection is cut, as when a server
//! dies); [`RtmpServer::restart`] brings it back on the same port.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The RTMP module Debian installs.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const NGINX: &str = "/usr/sbin/nginx";

/// A running (or stopped) nginx-rtmp. Dropping it stops it and removes its prefix.
#[derive(Debug)]
pub struct RtmpServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn fail(reason: String) -> Error {
    Error::Process { program: "nginx", reason }
}

impl RtmpServer {
    /// Start nginx-rtmp on a free port.
    pub fn start() -> Result<RtmpServer> {
        if !Path::new(RTMP_MODULE).is_file() || !Path::new(NGINX).is_file() {
            return Err(fail(
                "nginx-light and libnginx-mod-rtmp are needed (bins/install-deps.sh test)".into(),
            ));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail(format!("no free port: {e}")))?
            .port();
        let dir = std::env::temp_dir().join(format!("pv-rtmp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut server = RtmpServer { dir, port, child: None };
        server.restart()?;
        Ok(server)
    }

    /// (Re)start on the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let p = self.dir.display();
        let conf = self.dir.join("nginx.conf");
        let text = format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log info;\nevents {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{\n\
             live on; record off; allow publish 127.0.0.1; deny publish all; }} }} }}\n",
            port = self.port,
        );
        std::fs::write(&conf, text).map_err(|e| Error::io(&conf, e))?;
        let child = Command::new(NGINX)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(format!("{p}/"))
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(fail(format!("exited ({status}): {log}")));
            }
            if Instant::now() > deadline {
                return Err(fail(format!("did not listen on port {}", self.port)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kill it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/live/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{name}", self.port)
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
