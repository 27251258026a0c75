//! A one-purpose HTTP server for the exchanges' unit tests: it listens on 127.0.0.1, answers
//! each request with the next canned answer, byte for byte as the real service writes it, and
//! keeps what it was asked so that tests can check the request line and headers.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does with one request.
pub enum Answer {
    /// Writes these bytes (a whole response, status line to body), keeping the connection.
    Bytes(Vec<u8>),
    /// Says nothing for this long, then closes the connection.
    Silence(Duration),
}

/// A response with `Content-Length`: `status` is the status line's rest (`200 OK`).
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut bytes = head(status, headers);
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    Answer::Bytes(bytes)
}

/// A response in `Transfer-Encoding: chunked`, the body cut into chunks of `chunk` bytes
/// (as Go's and nginx's servers send bodies whose length they do not know up front).
pub fn chunked(status: &str, headers: &[(&str, &str)], body: &[u8], chunk: usize) -> Answer {
    let mut bytes = head(status, headers);
    bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    for piece in body.chunks(chunk) {
        bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    Answer::Bytes(bytes)
}

fn head(status: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut bytes = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET /path?query HTTP/1.1`
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of a header, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running server. It lives until the test process ends.
pub struct Server {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    asked: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// What was asked so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.asked.lock().unwrap().clone()
    }
}

/// Starts a server that gives `answers` in order, one per request, over any number of
/// connections; a request beyond them gets its connection closed.
pub fn serve(answers: Vec<Answer>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let server = Server {
        url,
        asked: Arc::clone(&asked),
    };
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (answers, asked) = (Arc::clone(&answers), Arc::clone(&asked));
            std::thread::spawn(move || converse(stream, &answers, &asked));
        }
    });
    server
}

fn converse(stream: TcpStream, answers: &Mutex<VecDeque<Answer>>, asked: &Mutex<Vec<Request>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        asked.lock().unwrap().push(request);
        let answer = answers.lock().unwrap().pop_front();
        match answer {
            Some(Answer::Bytes(bytes)) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Some(Answer::Silence(how_long)) => {
                std::thread::sleep(how_long);
                return;
            }
            None => return,
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let request = Request {
        line: line.trim_end().to_string(),
        headers,
        body: Vec::new(),
    };
    let length = request
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { body, ..request })
}
