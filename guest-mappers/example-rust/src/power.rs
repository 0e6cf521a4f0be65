//! The power API behind `operate`: `GET {power_api}/machines/{m}` for a machine's state, and
//! `POST {power_api}/machines/{m}/{restart|power-down|power-up}` with an empty body. Every
//! failure is a `refused("power API: ...")`, never an `err`: the user gets a clean "could not"
//! and the session goes on.

use interstate_mapper_sdk::http::percent_encode;
use interstate_mapper_sdk::types::{Operation, OperationOutcome};
use serde_json::Value;

use crate::policy::{Host, HttpAnswer, HttpMethod};

/// The operation as the WIT and the power API's paths spell it.
pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Restart => "restart",
        Operation::PowerDown => "power-down",
        Operation::PowerUp => "power-up",
    }
}

/// Performs `op` on the machine `hostname` through the power API at `api`.
pub fn operate(host: &dyn Host, api: &str, hostname: &str, op: Operation) -> OperationOutcome {
    let machine = format!("{api}/machines/{}", percent_encode(hostname));
    let result = match op {
        Operation::PowerUp => power_up(host, &machine),
        Operation::Restart | Operation::PowerDown => {
            let url = format!("{machine}/{}", operation_name(op));
            post(host, &url).map(|()| OperationOutcome::Done("requested".to_owned()))
        }
    };
    result.unwrap_or_else(|detail| OperationOutcome::Refused(format!("power API: {detail}")))
}

/// `power-up`: a running machine is done, a starting one is to be retried, a stopped one is
/// powered on and then to be retried.
fn power_up(host: &dyn Host, machine: &str) -> Result<OperationOutcome, String> {
    let answer = host.http(HttpMethod::Get, machine)?;
    check_status("GET", machine, &answer)?;
    match machine_state(&answer.body) {
        Some("running") => Ok(OperationOutcome::Done("running".to_owned())),
        Some("starting") => Ok(OperationOutcome::TryAgain("starting".to_owned())),
        Some("stopped") => {
            post(host, &format!("{machine}/power-up"))?;
            Ok(OperationOutcome::TryAgain("powering on".to_owned()))
        }
        _ => Err(format!(
            "GET {machine}: malformed answer (expected {{\"state\": \"running\"|\"starting\"|\"stopped\"}})"
        )),
    }
}

fn post(host: &dyn Host, url: &str) -> Result<(), String> {
    let answer = host.http(HttpMethod::Post, url)?;
    check_status("POST", url, &answer)
}

fn check_status(method: &str, url: &str, answer: &HttpAnswer) -> Result<(), String> {
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        Err(format!("{method} {url}: HTTP {}", answer.status))
    }
}

fn machine_state(body: &[u8]) -> Option<&'static str> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match value.get("state")?.as_str()? {
        "running" => Some("running"),
        "starting" => Some("starting"),
        "stopped" => Some("stopped"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_one_path_segment() {
        assert_eq!(
            percent_encode("ws-art-1.example.com"),
            "ws-art-1.example.com"
        );
        assert_eq!(percent_encode("::ffff:127.0.0.2"), "%3A%3Affff%3A127.0.0.2");
        assert_eq!(percent_encode("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn machine_states() {
        assert_eq!(machine_state(br#"{"state":"running"}"#), Some("running"));
        assert_eq!(
            machine_state(br#"{"state":"stopped","x":1}"#),
            Some("stopped")
        );
        assert_eq!(machine_state(br#"{"state":"asleep"}"#), None);
        assert_eq!(machine_state(br#"{"state":1}"#), None);
        assert_eq!(machine_state(b"running"), None);
    }
}
