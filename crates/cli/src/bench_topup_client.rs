//! The top-up bench's phones over HTTP, timed part: every phone a task on one thread's runtime,
//! each with its own kept-alive HTTP/1.1 connection (`hyper`'s client), sending the requests the
//! wallet SDK's `HttpApi` sends for a top-up (its paths and bodies: `yitong_wallet::routes`) and
//! talking to its own software SE. The phones share the machine's two cores with the service:
//! the wallet SDK's blocking client needs a thread per phone, each woken by every answer, and
//! those threads took about 0.28 of the two cores where these tasks take 0.16.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use yitong_wallet::api::{Authorization, Loaded, OrderInfo, TopUpOrder, TopUpRequest};
use yitong_wallet::routes;
use yitong_wallet::se::{exchange, order_id as phone_order_id};
use yitong_wallet::SoftSe;

use crate::cpu;

/// An enrolled phone's part of the timed run.
pub(crate) struct TimedPhone {
    /// `Bearer …`.
    pub authorization: String,
    pub serial: String,
    pub se: SoftSe,
}

/// CPU time over the timed part: the whole process's (the service's too, when it is in this
/// process) and the phones' thread's.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spent {
    pub process: Duration,
    pub phones: Duration,
}

/// What a phone did: its latencies, when it ended, the error that stopped it; its SE back.
pub(crate) struct Timed {
    pub se: SoftSe,
    pub latencies: Vec<Duration>,
    pub end: Instant,
    pub error: Option<String>,
}

/// Runs `topups` top-ups of `amount_fen` on each phone against `server` (`http://host:port`),
/// all at once on this thread; `done` counts top-ups as they complete. The run's start, each
/// phone's part, in order, and the CPU time spent.
pub(crate) fn run(
    server: &str,
    phones: Vec<TimedPhone>,
    topups: u32,
    amount_fen: i64,
    done: Arc<AtomicU64>,
) -> anyhow::Result<(Instant, Vec<Timed>, Spent)> {
    let authority: Arc<str> =
        server.strip_prefix("http://").context("the server's URL is not http://")?.trim_end_matches('/').into();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(async {
        // Connected before the clock starts, as the blocking phones' connections were kept alive
        // from enrolling.
        let mut connected = Vec::with_capacity(phones.len());
        for phone in phones {
            connected.push((connect(&authority).await, phone));
        }
        let (start, process, own) = (Instant::now(), cpu::process(), cpu::thread());
        let tasks: Vec<_> = connected
            .into_iter()
            .map(|(sender, phone)| {
                let authority = authority.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let TimedPhone { authorization, serial, mut se } = phone;
                    let (mut latencies, mut error) = (Vec::with_capacity(topups as usize), None);
                    match sender {
                        Ok(sender) => {
                            let mut client = Client { sender, authority };
                            for n in 1..=i64::from(topups) {
                                let began = Instant::now();
                                match client.top_up(&authorization, &serial, &mut se, amount_fen, n * amount_fen).await
                                {
                                    Ok(()) => latencies.push(began.elapsed()),
                                    Err(failed) => {
                                        error = Some(format!("top-up {n}: {failed:#}"));
                                        break;
                                    }
                                }
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(failed) => error = Some(format!("{failed:#}")),
                    }
                    Timed { se, latencies, end: Instant::now(), error }
                })
            })
            .collect();
        let mut timed = Vec::with_capacity(tasks.len());
        for task in tasks {
            timed.push(task.await.context("a phone's task")?);
        }
        let spent =
            Spent { process: cpu::process().saturating_sub(process), phones: cpu::thread().saturating_sub(own) };
        Ok((start, timed, spent))
    })
}

async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream =
        tokio::net::TcpStream::connect(authority).await.with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

struct Client {
    sender: SendRequest<Full<Bytes>>,
    authority: Arc<str>,
}

impl Client {
    async fn top_up(
        &mut self,
        authorization: &str,
        serial: &str,
        se: &mut SoftSe,
        amount_fen: i64,
        balance_fen: i64,
    ) -> anyhow::Result<()> {
        let order_id = phone_order_id("TU-")?;
        let request = TopUpRequest { card: serial.to_owned(), amount_fen, order_id: order_id.clone() };
        let opened: TopUpOrder =
            self.post(routes::OPEN_TOPUP, Some(authorization), serde_json::to_vec(&request)?).await?;
        let _: OrderInfo = self.post(&routes::dev_pay(&order_id), None, Vec::new()).await?;
        let answer = exchange(se, &opened.initialize_command)?;
        let authorized: Authorization =
            self.post(&routes::authorize(&order_id), Some(authorization), routes::answer_body(&answer)).await?;
        let answer = exchange(se, &authorized.credit_command)?;
        let loaded: Loaded =
            self.post(&routes::complete(&order_id), Some(authorization), routes::answer_body(&answer)).await?;
        if loaded.order.state != "loaded" || loaded.balance_after_fen != balance_fen {
            bail!(
                "order {order_id}: completed as {} with balance {} fen, expected loaded with {balance_fen} fen",
                loaded.order.state,
                loaded.balance_after_fen
            );
        }
        Ok(())
    }

    async fn post<T: DeserializeOwned>(
        &mut self,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let mut request = Request::builder().method(Method::POST).uri(path).header(HOST, &*self.authority);
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await.with_context(|| format!("POST {path}"))?;
        let response = self.sender.send_request(request).await.with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]));
        }
        serde_json::from_slice(&body).with_context(|| format!("POST {path}: the answer"))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A service that reads one request and answers `status` with the JSON `body`; the request's
    /// bytes come back through the handle.
    async fn one_answer(status: &str, body: &str) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listens");
        let authority = listener.local_addr().expect("an address").to_string();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("a phone connects");
            let mut request = vec![0; 4096];
            let read = socket.read(&mut request).await.expect("a request");
            request.truncate(read);
            socket.write_all(answer.as_bytes()).await.expect("answered");
            request
        });
        (authority, served)
    }

    #[tokio::test]
    async fn a_request_carries_the_token_and_json_and_its_answer_is_read() {
        let body = r#"{"answer":"9000"}"#;
        let (authority, served) = one_answer("200 OK", body).await;
        let mut client = Client { sender: connect(&authority).await.expect("connects"), authority: authority.into() };
        let answer: serde_json::Value =
            client.post("/v1/topups/TU-1/complete", Some("Bearer ytp_x"), body.into()).await.expect("answered");
        assert_eq!(answer["answer"], "9000");
        let request = String::from_utf8(served.await.expect("served")).expect("text");
        assert!(request.starts_with("POST /v1/topups/TU-1/complete HTTP/1.1\r\n"), "{request}");
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("authorization: bearer ytp_x\r\n"), "{request}");
        assert!(lower.contains("content-type: application/json\r\n"), "{request}");
        assert!(request.ends_with(body), "{request}");
    }

    #[tokio::test]
    async fn a_refusal_is_an_error_naming_the_request_status_and_message() {
        let (authority, _served) = one_answer("409 Conflict", r#"{"code":"not_paid","message":"not paid yet"}"#).await;
        let mut client = Client { sender: connect(&authority).await.expect("connects"), authority: authority.into() };
        let refused = client.post::<serde_json::Value>("/v1/topups/TU-1/authorize", None, Vec::new()).await;
        let error = format!("{:#}", refused.expect_err("refused"));
        assert!(error.contains("POST /v1/topups/TU-1/authorize: 409 Conflict"), "{error}");
        assert!(error.contains("not paid yet"), "{error}");
    }

    #[tokio::test]
    async fn no_service_listening_is_named() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let error = format!("{:#}", connect("127.0.0.1:9").await.expect_err("refused"));
        assert!(error.contains("cannot connect to 127.0.0.1:9"), "{error}");
    }
}
