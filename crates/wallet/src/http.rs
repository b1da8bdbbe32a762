//! [`WalletApi`] over HTTP: a blocking `ureq` client (rustls for `https://`, no C library), JSON
//! both ways, the service's `{code, message}` errors kept with their status.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::api::{
    Authorization, CardAnswer, CardRequest, CardView, Claimed, ClosureStep, Device, Eligibility, Evidence,
    EvidenceCommands, Loaded, OrderInfo, PhoneView, Purpose, Reconciled, Registration, TopUpOrder, TopUpRequest,
    WalletApi,
};
use crate::error::WalletError;
use crate::token::Token;

/// Environment variable naming the service's base URL.
pub const SERVER_ENV: &str = "YITONG_SERVER";
/// The service's base URL unless told otherwise.
pub const SERVER_DEFAULT: &str = "http://127.0.0.1:8080";
/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: an issued card's image is a few kilobytes.
const ANSWER_BYTES_MAX: u64 = 1024 * 1024;

/// The service at a base URL.
pub struct HttpApi {
    server: String,
    agent: ureq::Agent,
}

/// Takes an IP address written in the URL as it is, and asks the system's resolver only for a
/// name. ureq's own resolver runs for every request, not only for a new connection, and under a
/// time-out it does so on a thread it starts for the purpose: for `http://127.0.0.1:8080` that
/// thread was the client's largest cost.
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.authority().and_then(|authority| {
            let ip = authority.host().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok()?;
            let port = authority.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })?;
            Some(SocketAddr::new(ip, port))
        });
        match literal {
            Some(address) => {
                let mut addresses = self.0.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The service's error body.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl HttpApi {
    /// A client of the service at `server` (`http://HOST:PORT`, no path), checked for its shape.
    pub fn new(server: &str) -> Result<HttpApi, WalletError> {
        let server = server.trim().trim_end_matches('/');
        let rest = server.strip_prefix("http://").or_else(|| server.strip_prefix("https://"));
        if rest.is_none_or(|host| host.is_empty() || host.contains('/')) {
            return Err(WalletError::Usage(format!(
                "`{server}` is not a service URL like {SERVER_DEFAULT} (http:// or https://, host and port, no path)"
            )));
        }
        let config =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build();
        let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), LiteralFirst::default());
        Ok(HttpApi { server: server.to_owned(), agent })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    /// Sends and reads the answer: `T` for a 2xx, the service's error otherwise.
    fn exchange<T: DeserializeOwned>(
        &self,
        request: String,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, WalletError> {
        let mut response = sent.map_err(|e| self.transport(&request, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_string()
            .map_err(|e| self.transport(&request, e))?;
        if (200..300).contains(&status) {
            // No content (204) reads as JSON's null: the unit answer.
            let body = if body.is_empty() { "null" } else { body.as_str() };
            return serde_json::from_str(body)
                .map_err(|e| WalletError::BadServiceAnswer { request: request.clone(), why: e.to_string() });
        }
        let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(error) => (error.code, error.message),
            Err(_) => (String::new(), body.chars().take(200).collect()),
        };
        Err(WalletError::Service { request, status, code, message })
    }

    fn transport(&self, request: &str, error: ureq::Error) -> WalletError {
        match error {
            ureq::Error::Json(e) => WalletError::BadServiceAnswer { request: request.to_owned(), why: e.to_string() },
            other => WalletError::Unreachable { server: self.server.clone(), why: other.to_string() },
        }
    }

    /// A GET, sent again once on a new connection when the one it went on broke (an I/O error
    /// other than a refused connection; not a timeout): a connection kept from an earlier
    /// request may have been closed by the service meanwhile (as after an answer that left the
    /// request's body unread), and a GET changes nothing.
    fn get<T: DeserializeOwned>(&self, token: Option<&Token>, path: &str) -> Result<T, WalletError> {
        let call = || {
            let mut request = self.agent.get(self.url(path));
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {}", token.expose()));
            }
            request.call()
        };
        let sent = match call() {
            Err(ureq::Error::Io(error)) if error.kind() != std::io::ErrorKind::ConnectionRefused => call(),
            sent => sent,
        };
        self.exchange(format!("GET {}", strip_query(path)), sent)
    }

    fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        token: Option<&Token>,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, WalletError> {
        let mut request = self.agent.post(self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        self.exchange(format!("POST {path}"), sent)
    }
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Path segments the wallet sends are IDs it made or the service made (`A-Z a-z 0-9 _ -`);
/// anything else is percent-encoded so that it stays one segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The top-up's requests: paths and bodies, for [`HttpApi`] and for other clients of the same
/// service (the top-up bench's asynchronous phones).
pub mod routes {
    use super::segment;

    /// `POST`: opens a top-up order (a `TopUpRequest`).
    pub const OPEN_TOPUP: &str = "/v1/topups";

    /// `POST`, DEVELOPMENT ONLY: the simulated provider pays the order.
    pub fn dev_pay(order_id: &str) -> String {
        format!("/v1/dev/orders/{}/pay", segment(order_id))
    }

    /// `POST` ([`answer_body`]): INITIALIZE FOR LOAD's answer.
    pub fn authorize(order_id: &str) -> String {
        format!("/v1/topups/{}/authorize", segment(order_id))
    }

    /// `POST` ([`answer_body`]): CREDIT FOR LOAD's answer.
    pub fn complete(order_id: &str) -> String {
        format!("/v1/topups/{}/complete", segment(order_id))
    }

    /// The JSON body carrying a card's answer.
    pub fn answer_body(answer: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&answer_json(answer)).unwrap_or_default()
    }

    pub(super) fn answer_json(answer: &[u8]) -> serde_json::Value {
        serde_json::json!({ "answer": hex::encode_upper(answer) })
    }
}

impl WalletApi for HttpApi {
    fn server(&self) -> &str {
        &self.server
    }

    fn register_phone(&self, device: &Device) -> Result<Registration, WalletError> {
        self.post(None, "/v1/phones", Some(device))
    }

    fn register_phone_again(
        &self,
        device: &Device,
        reset_code: &str,
        token: &Token,
    ) -> Result<Registration, WalletError> {
        let mut body = serde_json::to_value(device)
            .map_err(|e| WalletError::Usage(format!("the phone's device does not serialize: {e}")))?;
        body["reset_code"] = json!(reset_code);
        body["token"] = json!(token.expose());
        self.post(None, "/v1/phones", Some(&body))
    }

    fn rotate_token(&self, token: &Token, new: &Token) -> Result<(), WalletError> {
        self.post(Some(token), "/v1/phones/me/token", Some(&json!({ "token": new.expose() })))
    }

    fn eligibility(&self, maker: &str, model: &str, city: &str) -> Result<Eligibility, WalletError> {
        let query: String = [("maker", maker), ("model", model), ("city", city)]
            .iter()
            .map(|(name, value)| format!("{name}={}", segment(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.get(None, &format!("/v1/devices/eligibility?{query}"))
    }

    fn request_card(&self, token: &Token, request: &CardRequest) -> Result<CardAnswer, WalletError> {
        self.post(Some(token), "/v1/cards", Some(request))
    }

    fn dev_pay(&self, order_id: &str) -> Result<OrderInfo, WalletError> {
        self.post::<_, ()>(None, &routes::dev_pay(order_id), None)
    }

    fn open_topup(&self, token: &Token, request: &TopUpRequest) -> Result<TopUpOrder, WalletError> {
        self.post(Some(token), routes::OPEN_TOPUP, Some(request))
    }

    fn authorize(&self, token: &Token, order_id: &str, answer: &[u8]) -> Result<Authorization, WalletError> {
        self.post(Some(token), &routes::authorize(order_id), Some(&routes::answer_json(answer)))
    }

    fn complete(&self, token: &Token, order_id: &str, answer: &[u8]) -> Result<Loaded, WalletError> {
        self.post(Some(token), &routes::complete(order_id), Some(&routes::answer_json(answer)))
    }

    fn evidence(&self, token: &Token, order_id: &str) -> Result<EvidenceCommands, WalletError> {
        self.get(Some(token), &format!("/v1/topups/{}/evidence", segment(order_id)))
    }

    fn reconcile(&self, token: &Token, order_id: &str, evidence: &Evidence) -> Result<Reconciled, WalletError> {
        self.post(Some(token), &format!("/v1/topups/{}/reconcile", segment(order_id)), Some(evidence))
    }

    fn me(&self, token: &Token) -> Result<PhoneView, WalletError> {
        self.get(Some(token), "/v1/phones/me")
    }

    fn card(&self, token: &Token, serial: &str) -> Result<CardView, WalletError> {
        self.get(Some(token), &format!("/v1/cards/{}", segment(serial)))
    }

    fn start_closure(&self, token: &Token, serial: &str, purpose: Purpose) -> Result<ClosureStep, WalletError> {
        let body = json!({ "purpose": purpose });
        self.post(Some(token), &format!("/v1/cards/{}/closure", segment(serial)), Some(&body))
    }

    fn closure_answer(&self, token: &Token, closure_id: &str, answer: &[u8]) -> Result<ClosureStep, WalletError> {
        self.post(
            Some(token),
            &format!("/v1/closures/{}/answer", segment(closure_id)),
            Some(&routes::answer_json(answer)),
        )
    }

    fn claim_transfer(&self, token: &Token, code: &str, channel: &str) -> Result<Claimed, WalletError> {
        let body = json!({ "code": code, "channel": channel });
        self.post(Some(token), "/v1/transfers/claim", Some(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_must_be_http_with_a_host_and_no_path() {
        for good in ["http://127.0.0.1:8080", "https://wallet.example/", " http://localhost:1 "] {
            assert!(HttpApi::new(good).is_ok(), "{good}");
        }
        for bad in ["", "127.0.0.1:8080", "ftp://x", "http://", "http://host/v1"] {
            let message = HttpApi::new(bad).err().expect(bad).to_string();
            assert!(message.contains("is not a service URL"), "{bad}: {message}");
        }
    }

    #[test]
    fn path_segments_stay_one_segment() {
        assert_eq!(segment("TU-0123_ab"), "TU-0123_ab");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("Mi 6"), "Mi%206");
    }

    #[test]
    fn a_get_on_a_kept_connection_the_service_closed_is_sent_again_on_a_new_one() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // The first connection answers one request and keeps the connection, then reads the
        // next request and closes without an answer; the second connection answers.
        let server = std::thread::spawn(move || {
            let read_request = |reader: &mut BufReader<std::net::TcpStream>| loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            };
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
            let (first, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(first.try_clone().unwrap());
            read_request(&mut reader);
            (&first).write_all(answer.as_bytes()).unwrap();
            read_request(&mut reader);
            drop((reader, first));
            let (second, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(second.try_clone().unwrap());
            read_request(&mut reader);
            (&second).write_all(answer.as_bytes()).unwrap();
        });
        let api = HttpApi::new(&format!("http://{address}")).unwrap();
        let first: serde_json::Value = api.get(None, "/v1/a").expect("answered");
        let again: serde_json::Value = api.get(None, "/v1/b").expect("sent again on a new connection");
        assert_eq!((first["ok"].as_bool(), again["ok"].as_bool()), (Some(true), Some(true)));
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_service_is_told_apart_from_a_refusal() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let api = HttpApi::new("http://127.0.0.1:9").unwrap();
        let error = api.dev_pay("ORDER-1").unwrap_err();
        assert!(matches!(error, WalletError::Unreachable { .. }), "{error}");
        assert!(error.to_string().starts_with("cannot reach the service at http://127.0.0.1:9"), "{error}");
    }

    #[test]
    fn an_address_in_the_url_is_taken_as_written_and_a_name_is_looked_up() {
        let resolve = |url: &str| {
            let uri: ureq::http::Uri = url.parse().unwrap();
            let config = ureq::config::Config::default();
            let timeout = NextTimeout {
                after: ureq::unversioned::transport::time::Duration::from_secs(5),
                reason: ureq::Timeout::Resolve,
                per_read: None,
                per_write: None,
            };
            let addresses = LiteralFirst::default().resolve(&uri, &config, timeout).unwrap();
            addresses.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(resolve("http://127.0.0.1:8080/v1/phones"), ["127.0.0.1:8080"]);
        assert_eq!(resolve("http://[::1]:9/healthz"), ["[::1]:9"]);
        assert_eq!(resolve("https://10.0.0.7/v1"), ["10.0.0.7:443"]);
        assert_eq!(resolve("http://10.0.0.7/v1"), ["10.0.0.7:80"]);
        // A name goes to the system's resolver: `localhost` is in every hosts file.
        let local = resolve("http://localhost:8080/");
        assert!(!local.is_empty() && local.iter().all(|a| a.ends_with(":8080")), "{local:?}");
    }
}
