//! A fake machine power API on 127.0.0.1, the kind the example mappers' `operate` calls over
//! `wasi:http`: `GET /machines/{m}` answers `{"state": ...}`, `POST /machines/{m}/{action}`
//! records the action. A machine that was powered up has booted by the next `GET` (it reports
//! `running`), so a client sees "try again" (the power-up request) before "done"; a machine set
//! to `starting` reports it once, then `running`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request the power API received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerCall {
    /// `GET` or `POST`.
    pub method: String,
    /// The machine, percent-decoded.
    pub machine: String,
    /// The action of a `POST` (`power-up`, `restart`, `power-down`); empty for a `GET`.
    pub action: String,
}

#[derive(Debug, Default)]
struct Machines {
    /// Machine → state; an unknown machine is `stopped`.
    states: HashMap<String, &'static str>,
    calls: Vec<PowerCall>,
}

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct PowerApi {
    /// Where it listens.
    pub addr: SocketAddr,
    machines: Arc<Mutex<Machines>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PowerApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PowerApi {
    /// Serves on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let machines = Arc::new(Mutex::new(Machines::default()));
        let task = {
            let machines = machines.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let machines = machines.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let response = answer(&request, &machines);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
            })
        };
        Self {
            addr,
            machines,
            task,
        }
    }

    /// The base URL a mapper's `power_api` setting names.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<PowerCall> {
        self.machines.lock().expect("power API lock").calls.clone()
    }

    /// Sets a machine's state (`running`, `starting`, `stopped`).
    pub fn set_state(&self, machine: &str, state: &'static str) {
        self.machines
            .lock()
            .expect("power API lock")
            .states
            .insert(machine.to_owned(), state);
    }
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    machines: &Mutex<Machines>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix("/machines/") else {
        return reply(StatusCode::NOT_FOUND, "{}".into());
    };
    let (machine, action) = match rest.split_once('/') {
        Some((machine, action)) => (percent_decode(machine), action.to_owned()),
        None => (percent_decode(rest), String::new()),
    };
    let mut machines = machines.lock().expect("power API lock");
    machines.calls.push(PowerCall {
        method: request.method().to_string(),
        machine: machine.clone(),
        action: action.clone(),
    });
    let state = machines.states.get(&machine).copied().unwrap_or("stopped");
    match (request.method(), action.as_str()) {
        (&Method::GET, "") => {
            // A machine that was powered up boots: `starting` is reported once, then `running`.
            if state == "starting" {
                machines.states.insert(machine, "running");
            }
            reply(StatusCode::OK, format!("{{\"state\":\"{state}\"}}"))
        }
        (&Method::POST, "power-up") => {
            machines.states.insert(machine, "running");
            reply(StatusCode::ACCEPTED, "{}".into())
        }
        (&Method::POST, "restart") => reply(StatusCode::ACCEPTED, "{}".into()),
        (&Method::POST, "power-down") => {
            machines.states.insert(machine, "stopped");
            reply(StatusCode::ACCEPTED, "{}".into())
        }
        _ => reply(StatusCode::NOT_FOUND, "{}".into()),
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Decodes `%XX` escapes (machine names are host names or addresses such as `::ffff:127.0.0.2`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
