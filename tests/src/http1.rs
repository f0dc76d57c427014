//! A tiny HTTP/1.1 server for emulators: one request per connection (`Connection: close`),
//! `Content-Length` bodies only, a synchronous handler, on a free loopback port, on its own
//! thread and tokio runtime (so it serves blocking and async tests alike), stopped on drop.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body.
const MAX_BODY: usize = 1024 * 1024;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target's path, without the query.
    pub path: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as `application/x-www-form-urlencoded` fields (the last of a repeated name).
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra headers (`Content-Length` and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: value.to_string().into_bytes(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the handler wants done with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this answer and close.
    Reply(Reply),
    /// Never answer; the connection stays open until the server stops.
    Hang,
}

type Handler = Arc<dyn Fn(Request) -> Action + Send + Sync>;

/// A running server; stops (and closes every connection) on drop.
#[derive(Debug)]
pub struct Server {
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on a free loopback port and serves each request with `handler`.
    pub fn start(handler: impl Fn(Request) -> Action + Send + Sync + 'static) -> Result<Self> {
        let listener = StdListener::bind("127.0.0.1:0").context("bind a loopback port")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = oneshot::channel();
        let handler: Handler = Arc::new(handler);
        let thread = std::thread::Builder::new()
            .name(format!("http1-{port}"))
            .spawn(move || runtime.block_on(serve(listener, handler, stop)))?;
        Ok(Self {
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until told to stop; returning drops the runtime's tasks and so every connection.
async fn serve(listener: StdListener, handler: Handler, mut stop: oneshot::Receiver<()>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(stream, handler.clone()));
                }
            }
        }
    }
}

async fn connection(mut stream: TcpStream, handler: Handler) {
    let reply = match read_request(&mut stream).await {
        Ok(Some(request)) => match handler(request) {
            Action::Reply(reply) => reply,
            Action::Hang => return std::future::pending().await,
        },
        Ok(None) => return,
        Err(problem) => Reply::text(problem.0, problem.1),
    };
    let _ = stream.write_all(&encode(&reply)).await;
    let _ = stream.shutdown().await;
}

/// An HTTP status and text for a request that cannot be read.
struct BadRequest(u16, &'static str);

/// Reads one request; `None` when the peer closed before sending anything.
async fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, BadRequest> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return Err(BadRequest(431, "request head too large"));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(BadRequest(400, "request cut short")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| BadRequest(400, "head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest(400, "bad request line"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(BadRequest(400, "bad header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(BadRequest(501, "only Content-Length bodies are supported"));
    }
    let length: usize = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| BadRequest(400, "bad Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(BadRequest(413, "body too large"));
    }
    while request.body.len() < length {
        let mut chunk = vec![0u8; length - request.body.len()];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(BadRequest(400, "body cut short")),
            Ok(n) => request.body.extend_from_slice(&chunk[..n]),
        }
    }
    request.body.truncate(length);
    Ok(Some(request))
}

/// The bytes of an answer.
fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&reply.body);
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}
