//! The wire format: reading one message, what a message is (greeting,
//! reply, event), encoding a command (refused when over QEMU's JSON
//! parser's limits: [`crate::limits`]), and decoding replies and events
//! into their types.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use qmp_types::{AnyEvent, Timestamp, VersionInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};

use crate::error::{Disconnect, Error, ErrorClass, Result};
use crate::limits::{check_parser_limits, duplicate_key};
use crate::options::UnknownMembers;

/// The largest greeting accepted, in bytes (QEMU's is about 150).
pub(crate) const MAX_GREETING: usize = 64 << 10;

/// What QEMU said when we connected. A greeting over 64 KiB,
/// or whose version numbers are negative or don't fit a `u32`, is
/// refused ([`Error::Protocol`]); capabilities that aren't strings are
/// skipped.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Greeting {
    /// QEMU's version and package.
    pub version: VersionInfo,
    /// Capabilities offered (`oob`).
    pub capabilities: Vec<String>,
    /// Whether out-of-band execution was negotiated.
    pub oob: bool,
}

/// An error reply's `error` member.
#[derive(Deserialize)]
pub(crate) struct WireError {
    pub(crate) class: String,
    pub(crate) desc: String,
}

/// Any message from QEMU; members decoded lazily.
#[derive(Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(borrow, default)]
    pub(crate) id: Option<&'a RawValue>,
    #[serde(rename = "return", default)]
    pub(crate) ret: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) error: Option<WireError>,
    #[serde(default, borrow)]
    pub(crate) event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) timestamp: Option<Timestamp>,
}

/// What a reply says: its `return`, or QEMU's error class and
/// description.
pub(crate) type Outcome = std::result::Result<Box<RawValue>, (ErrorClass, String)>;

impl Incoming<'_> {
    /// The outcome if this message is a reply (it has `return` or
    /// `error`; `return` wins if both); `None` if it is neither.
    pub(crate) fn take_outcome(&mut self) -> Option<Outcome> {
        match (self.ret.take(), self.error.take()) {
            (Some(r), _) => Some(Ok(r)),
            (None, Some(e)) => Some(Err((ErrorClass::from_wire(&e.class), e.desc))),
            (None, None) => None,
        }
    }
}

/// A reply to `command` as the caller gets it: QEMU's error is
/// [`Error::Qmp`].
pub(crate) fn reply_result(command: &str, outcome: Outcome) -> Result<Box<RawValue>> {
    outcome.map_err(|(class, desc)| Error::Qmp {
        command: command.to_string(),
        class,
        desc,
    })
}

/// Shows at most 200 bytes of a message in an error.
pub(crate) fn excerpt(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(&line[..line.len().min(200)])
}

/// Why [`read_message`] stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Eof,
    Truncated(usize),
    TooLarge(usize),
}

impl From<ReadError> for Disconnect {
    fn from(e: ReadError) -> Disconnect {
        match e {
            ReadError::Io(error) => Disconnect::Io {
                op: "reading",
                error: error.into(),
            },
            ReadError::Eof => Disconnect::PeerClosed,
            ReadError::Truncated(bytes) => Disconnect::Truncated { bytes },
            ReadError::TooLarge(max) => Disconnect::Protocol(format!("message over {max} bytes")),
        }
    }
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Error {
        match e {
            ReadError::Io(e) => Error::Io(e),
            other => Error::Protocol(Disconnect::from(other).to_string()),
        }
    }
}

/// Reads one message (a line; blank lines are skipped) into `line`.
/// Cancel-safe: what was read stays in `line` and the buffer.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::result::Result<(), ReadError> {
    std::future::poll_fn(|cx| poll_message(r, cx, line, max)).await
}

/// [`read_message`] as a poll: `Ready` with a whole message in `line`
/// (or why none will come), `Pending` (waker registered) when the
/// message is not all there yet; what was read stays in `line` and the
/// buffer. Takes what is buffered before reading the socket.
pub(crate) fn poll_message<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    cx: &mut Context<'_>,
    line: &mut Vec<u8>,
    max: usize,
) -> Poll<std::result::Result<(), ReadError>> {
    loop {
        let buf = match Pin::new(&mut *r).poll_fill_buf(cx) {
            Poll::Ready(Ok(buf)) => buf,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(ReadError::Io(e))),
            Poll::Pending => return Poll::Pending,
        };
        if buf.is_empty() {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Poll::Ready(Err(ReadError::Eof));
            }
            return Poll::Ready(Err(ReadError::Truncated(line.len())));
        }
        match memchr_nl(buf) {
            Some(i) => {
                line.extend_from_slice(&buf[..i]);
                r.consume(i + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    line.clear();
                    continue;
                }
                if line.len() > max {
                    return Poll::Ready(Err(ReadError::TooLarge(max)));
                }
                return Poll::Ready(Ok(()));
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                r.consume(n);
            }
        }
        if line.len() > max {
            return Poll::Ready(Err(ReadError::TooLarge(max)));
        }
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

pub(crate) fn parse_greeting(line: &[u8]) -> Result<Greeting> {
    #[derive(Deserialize)]
    struct Inner<'a> {
        version: VersionInfo,
        /// Each capability's text, not decoded: only strings are kept, and
        /// anything else is skipped without being built.
        #[serde(default, borrow)]
        capabilities: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct G<'a> {
        #[serde(rename = "QMP", borrow)]
        qmp: Inner<'a>,
    }
    let bad = |why: String| Error::Protocol(format!("bad greeting ({why}): {}", excerpt(line)));
    let g: G = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
    let q = &g.qmp.version.qemu;
    for (part, n) in [("major", q.major), ("minor", q.minor), ("micro", q.micro)] {
        if u32::try_from(n).is_err() {
            return Err(bad(format!(
                "QEMU's {part} version {n} is out of range (0 to {})",
                u32::MAX
            )));
        }
    }
    Ok(Greeting {
        version: g.qmp.version,
        capabilities: g
            .qmp
            .capabilities
            .iter()
            .filter(|c| c.get().starts_with('"'))
            .filter_map(|c| serde_json::from_str(c.get()).ok())
            .collect(),
        oob: false,
    })
}

/// `{"VERB":"NAME","arguments":ARGS` with room for the rest, which
/// [`finish_command`] writes once the id is known; `arguments` left out
/// when empty (QEMU reads the socket a byte at a time: bytes count).
pub(crate) fn encode_command(verb: &str, name: &str, args: &RawValue) -> Vec<u8> {
    let a = args.get();
    let mut bytes = Vec::with_capacity(40 + name.len() + a.len());
    bytes.extend_from_slice(b"{\"");
    bytes.extend_from_slice(verb.as_bytes());
    bytes.extend_from_slice(b"\":\"");
    // QAPI names are letters, digits, `-`, `_` and (in downstream
    // extensions such as `__com.redhat_x`) `.`: written as they are;
    // anything else is escaped.
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        bytes.extend_from_slice(name.as_bytes());
    } else {
        let quoted = serde_json::Value::from(name).to_string();
        bytes.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
    }
    bytes.push(b'"');
    if a != "{}" && a != "null" {
        bytes.extend_from_slice(b",\"arguments\":");
        bytes.extend_from_slice(a.as_bytes());
    }
    bytes
}

/// `,"id":ID}\n`: the end of a command from [`encode_command`].
pub(crate) fn finish_command(bytes: &mut Vec<u8>, id: u64) {
    bytes.extend_from_slice(b",\"id\":");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = id;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&digits[i..]);
    bytes.extend_from_slice(b"}\n");
}

/// `}\n`: the end of an in-band command from [`encode_command`] sent
/// without an `id`. QMP answers in-band commands in the order they were
/// sent (out-of-band ones may overtake them, and always carry an id), so
/// the reply is matched by order; every command sent is within QEMU's
/// parser limits ([`check_parser_limits`]), so each gets exactly one
/// reply, a parse error included.
pub(crate) fn finish_command_without_id(bytes: &mut Vec<u8>) {
    bytes.extend_from_slice(b"}\n");
}

/// [`encode_command`], refused with [`Error::Unsendable`] when QEMU's
/// JSON parser would refuse the result (see [`check_parser_limits`]; for
/// `exec-oob`, also a key repeated in an object: [`duplicate_key`]).
/// Every command sent therefore parses, and gets exactly one reply.
pub(crate) fn encode_checked(verb: &str, name: &str, args: &RawValue) -> Result<Vec<u8>> {
    let bytes = encode_command(verb, name, args);
    let unsendable = |reason| Error::Unsendable {
        command: name.to_string(),
        reason,
    };
    check_parser_limits(&bytes).map_err(unsendable)?;
    if verb == "exec-oob"
        && let Some(key) = duplicate_key(args.get().as_bytes())
    {
        return Err(unsendable(format!(
            "its arguments hold the key {key:?} twice in one object, which QEMU's JSON parser refuses"
        )));
    }
    Ok(bytes)
}

/// HMP's error message in a command line's output, if the output is one
/// of HMP's error forms: a first line `Error: ...` (`hmp_handle_error`)
/// or `unknown command: ...`, or a usage message whose last line is
/// `Try "help ..." for more information`. The message is the output
/// without its trailing line break.
pub(crate) fn hmp_error(output: &str) -> Option<String> {
    let text = output.trim_end_matches(['\r', '\n']);
    let first = text.lines().next().unwrap_or("");
    let last = text.lines().last().unwrap_or("");
    let is_error = first.starts_with("Error: ")
        || first.starts_with("unknown command: ")
        || (last.starts_with("Try \"help ") && last.ends_with("\" for more information"));
    is_error.then(|| text.replace("\r\n", "\n"))
}

/// Decodes `raw` as `T`, naming the bad member's path on failure (found
/// by decoding again with the path tracked, so the common case pays
/// nothing for it).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &RawValue) -> Result<T> {
    if let Ok(v) = serde_json::from_str(raw.get()) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // The tracked path, and the part inside a union's branch that the
        // generated types name in their message.
        let (path, _) =
            qmp_types::rt::path::full_path_message(&e.path().to_string(), &e.inner().to_string());
        Error::Decode {
            what: what.to_string(),
            path,
            source: e.into_inner(),
        }
    })
}

/// A reply's `return`: `{}` also stands for `()`.
pub(crate) fn decode_reply<T: serde::de::DeserializeOwned>(
    what: &str,
    raw: &RawValue,
) -> Result<T> {
    match decode::<T>(what, raw) {
        Ok(v) => Ok(v),
        Err(e) => {
            if raw.get().trim() == "{}"
                && let Ok(v) = serde_json::from_str::<T>("null")
            {
                return Ok(v);
            }
            Err(e)
        }
    }
}

/// Decodes a reply or event by `policy`: what the bindings don't know is
/// collected (unless `Ignore`), and a decode that fails is tried again
/// leniently (unless `Deny`): a newer QEMU may have widened an optional
/// member's type, and such values are kept instead of failing the whole.
/// Returns the result and what to report (nothing under `Ignore`).
pub(crate) fn decode_by_policy<T, E>(
    policy: UnknownMembers,
    decode: impl Fn() -> std::result::Result<T, E>,
) -> (std::result::Result<T, E>, Vec<qmp_types::rt::UnknownMember>) {
    let (first, found) = match policy {
        UnknownMembers::Ignore => (decode(), Vec::new()),
        _ => qmp_types::rt::collect_unknown_members(&decode),
    };
    if first.is_ok() || policy == UnknownMembers::Deny {
        return (first, found);
    }
    let (again, mismatched) =
        qmp_types::rt::collect_unknown_members(|| qmp_types::rt::decode_leniently(&decode));
    match again {
        Ok(v) if policy == UnknownMembers::Ignore => (Ok(v), Vec::new()),
        Ok(v) => (Ok(v), mismatched),
        Err(_) => (first, found),
    }
}

/// "members the bindings don't know (a QEMU newer than they cover?): `x`
/// in T, `y` in U".
pub(crate) fn unknown_text(found: &[qmp_types::rt::UnknownMember]) -> String {
    let list: Vec<String> = found.iter().map(ToString::to_string).collect();
    format!(
        "members the bindings don't know (a QEMU newer than they cover?): {}",
        list.join(", ")
    )
}

/// QEMU's "no time" stamp, for events that came without one.
const NO_TIME: Timestamp = Timestamp {
    seconds: -1,
    microseconds: -1,
};

/// Decodes an event's data. A known event whose data doesn't fit its type
/// is kept as [`AnyEvent::Malformed`] with the decoder's message; only data
/// that isn't JSON at all is an error.
///
/// Members the bindings don't know go by `policy`: skipped, or handed to
/// `report` (and, with deny, making the event malformed).
pub(crate) fn typed_event(
    name: &str,
    data: Option<&RawValue>,
    ts: Option<Timestamp>,
    policy: UnknownMembers,
    report: &mut dyn FnMut(Vec<qmp_types::rt::UnknownMember>),
) -> std::result::Result<(Timestamp, AnyEvent), String> {
    let data = data.map_or("{}", |d| d.get());
    let decode = || {
        let mut de = serde_json::Deserializer::from_str(data);
        AnyEvent::deserialize_data(name, &mut de)
    };
    let (first, found) = decode_by_policy(policy, decode);
    let first = match (first, policy) {
        (Ok(_), UnknownMembers::Deny) if !found.is_empty() => {
            let data = serde_json::from_str(data).map_err(|e| format!("event {name}: {e}"))?;
            let error = unknown_text(&found);
            report(found);
            return Ok((
                ts.unwrap_or(NO_TIME),
                AnyEvent::Malformed {
                    name: name.to_string(),
                    data,
                    error,
                },
            ));
        }
        (r, _) => {
            report(found);
            r
        }
    };
    let event = match first {
        Ok(e) => e,
        Err(_) => {
            // Again, tracking the path, for the message.
            let mut de = serde_json::Deserializer::from_str(data);
            let mut track = serde_path_to_error::Track::new();
            let e = AnyEvent::deserialize_data(
                name,
                serde_path_to_error::Deserializer::new(&mut de, &mut track),
            )
            .err()
            .map_or_else(String::new, |e| e.to_string());
            let (path, e) = qmp_types::rt::path::full_path_message(&track.path().to_string(), &e);
            let error = format!("member `{path}`: {e}");
            let data = serde_json::from_str(data).map_err(|e| format!("event {name}: {e}"))?;
            AnyEvent::Malformed {
                name: name.to_string(),
                data,
                error,
            }
        }
    };
    Ok((ts.unwrap_or(NO_TIME), event))
}

/// Decodes one event message as the connection does (for tools that read
/// QMP logs, and benchmarks). A known event with data that doesn't fit
/// its type gives [`AnyEvent::Malformed`].
pub fn parse_event(line: &[u8]) -> Result<(Timestamp, AnyEvent)> {
    let msg: Incoming<'_> = serde_json::from_slice(line)
        .map_err(|e| Error::Protocol(format!("garbled message ({e}): {}", excerpt(line))))?;
    match msg.event {
        Some(name) => typed_event(
            &name,
            msg.data,
            msg.timestamp,
            UnknownMembers::Ignore,
            &mut |_| {},
        )
        .map_err(Error::Protocol),
        None => Err(Error::Protocol("not an event".into())),
    }
}

/// Splits what a QMP client writes into messages as QEMU's streaming
/// JSON parser does: a message ends where its outermost object (or array)
/// closes, newline or not (QEMU's Python library sends none); anything
/// else at the top level ends at a newline. For the peers this crate
/// plays (the proxy, the test double).
#[derive(Debug, Default)]
pub(crate) struct JsonSplitter {
    buf: Vec<u8>,
    /// Where the next message starts in `buf` (what comes before was
    /// handed out, and is dropped on the next push).
    start: usize,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl JsonSplitter {
    /// Adds bytes read.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not a whole message yet.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole message, if there is one (valid until the next
    /// call; no copy is made).
    pub(crate) fn next_message(&mut self) -> Option<&[u8]> {
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let at = self.take();
                        return Some(&self.buf[at..self.scanned]);
                    }
                }
                b'\n' if self.depth == 0 => {
                    let at = self.take();
                    if !self.buf[at..self.scanned]
                        .iter()
                        .all(u8::is_ascii_whitespace)
                    {
                        return Some(&self.buf[at..self.scanned]);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Ends the message at `scanned`; where it starts.
    fn take(&mut self) -> usize {
        self.in_string = false;
        self.escaped = false;
        std::mem::replace(&mut self.start, self.scanned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_come_whole_and_a_partial_one_waits() {
        let input: &[u8] = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":";
        let (mut tx, rx) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut tx, input)
            .await
            .expect("write");
        let mut r = BufReader::new(rx);
        let mut line = Vec::new();
        read_message(&mut r, &mut line, 100).await.expect("first");
        assert_eq!(line, b"{\"a\":1}");
        line.clear();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let polled = poll_message(&mut r, &mut cx, &mut line, 100);
        assert!(matches!(polled, Poll::Ready(Ok(()))), "{polled:?}");
        assert_eq!(line, b"{\"b\":2}");
        line.clear();
        let polled = poll_message(&mut r, &mut cx, &mut line, 100);
        assert!(polled.is_pending(), "{polled:?}");
        assert_eq!(line, b"{\"c\":", "a partial message waits in `line`");
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"3}\n")
            .await
            .expect("write");
        read_message(&mut r, &mut line, 100).await.expect("last");
        assert_eq!(line, b"{\"c\":3}", "the rest completes it");
        line.clear();
        drop(tx);
        assert!(matches!(
            read_message(&mut r, &mut line, 100).await,
            Err(ReadError::Eof)
        ));
    }

    #[test]
    fn hmp_error_forms_are_recognised() {
        // As QEMU 10.0.2 answered them.
        for out in [
            "unknown command: 'foo'\r\n",
            "Error: Device 'nosuch' not found\r\n",
            "Error: Invalid size abc\r\n",
            "block_set_io_throttle: block device name expected\r\nTry \"help block_set_io_throttle\" for more information\r\n",
        ] {
            let m = hmp_error(out).expect(out);
            assert!(!m.ends_with('\n') && !m.contains('\r'), "{m:?}");
        }
        for out in [
            "",
            "VM status: running\r\n",
            "None\r\n",
            "Device 'x' not found\r\n",
        ] {
            assert_eq!(hmp_error(out), None, "{out:?}");
        }
    }

    #[test]
    fn exec_oob_with_a_repeated_key_is_refused() {
        let args = RawValue::from_string(r#"{"uri":"a","uri":"b"}"#.into()).expect("raw");
        let e = encode_checked("exec-oob", "migrate-recover", &args).expect_err("refused");
        assert!(e.to_string().contains("\"uri\" twice"), "{e}");
        // In band, QEMU's parse error comes back in order, as the call's.
        assert!(encode_checked("execute", "migrate-recover", &args).is_ok());
    }

    #[test]
    fn command_encoding_is_compact() {
        let whole = |verb, name, args: &RawValue, id| {
            let mut b = encode_command(verb, name, args);
            finish_command(&mut b, id);
            b
        };
        let args = RawValue::from_string("{}".into()).expect("raw");
        assert_eq!(
            whole("execute", "query-version", &args, 7),
            b"{\"execute\":\"query-version\",\"id\":7}\n"
        );
        let args = RawValue::from_string("{\"id\":\"tab0\"}".into()).expect("raw");
        assert_eq!(
            whole("exec-oob", "device_del", &args, 1234567890),
            b"{\"exec-oob\":\"device_del\",\"arguments\":{\"id\":\"tab0\"},\"id\":1234567890}\n"
        );
        assert!(whole("execute", "x", &args, 0).ends_with(b",\"id\":0}\n"));
        let odd = whole("execute", "a\"b", &args, 1);
        let v: serde_json::Value = serde_json::from_slice(&odd).expect("valid JSON");
        assert_eq!(v["execute"], "a\"b");
    }

    #[test]
    fn the_splitter_ends_messages_where_qemu_does() {
        let mut sp = JsonSplitter::default();
        sp.push(b"{\"execute\": \"a\", \"arguments\": {\"s\": \"}{\\\"\"}}{\"execute\"");
        let first = sp.next_message().expect("first, without a newline");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(first).expect("json")["arguments"]["s"],
            "}{\""
        );
        assert!(sp.next_message().is_none());
        sp.push(b": \"b\"}\n  \ngarbage\n[1, 2]");
        let second = sp.next_message().expect("second");
        assert!(second.ends_with(b"\"b\"}"));
        assert_eq!(
            sp.next_message().map(<[u8]>::trim_ascii),
            Some(&b"garbage"[..])
        );
        assert_eq!(
            sp.next_message().map(<[u8]>::trim_ascii),
            Some(&b"[1, 2]"[..])
        );
        assert_eq!(sp.pending(), 0);
    }
}
