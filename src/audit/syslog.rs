//! The syslog output: RFC 5424 messages, one per datagram over UDP, or
//! octet-counted frames (RFC 6587 §3.4.1) over one TCP connection that is
//! reopened after a failure.

use std::io;
use std::time::Duration;

use metrics::Counter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::clock;
use super::record::Record;
use super::sink::{Message, Writer};
use crate::config::{AuditLevel, AuditSyslogConfig, SyslogProtocol};
use crate::telemetry::metrics::AUDIT_DROPPED_TOTAL;

/// Shortest wait between two connection attempts after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Starts the sender task on the current runtime.
pub(super) fn start(config: &AuditSyslogConfig, writer: Writer) -> io::Result<()> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("the syslog output needs a tokio runtime"))?;
    let sender = Sender {
        config: config.clone(),
        header_tail: format!("{} yatagarasu {} audit - ", hostname(), std::process::id()),
        dropped: metrics::counter!(AUDIT_DROPPED_TOTAL, "output" => "syslog"),
        udp: None,
        tcp: None,
        retry_at: None,
    };
    runtime.spawn(sender.run(writer));
    Ok(())
}

/// The connection state of the syslog output.
struct Sender {
    config: AuditSyslogConfig,
    /// ` HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA ` after the timestamp.
    header_tail: String,
    dropped: Counter,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    /// After a failure, no new connection before this instant.
    retry_at: Option<Instant>,
}

impl Sender {
    async fn run(mut self, mut writer: Writer) {
        while let Some(Message::Record(record)) = writer.rx.recv().await {
            // After a failure, records are dropped (and counted) until the
            // reconnection delay has passed.
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                self.dropped.increment(1);
                continue;
            }
            let message = self.format(&record);
            if let Err(error) = self.send(&message).await {
                self.dropped.increment(1);
                if self.udp.is_some() || self.tcp.is_some() || self.retry_at.is_none() {
                    tracing::warn!(%error, address = %self.config.address, "cannot send audit records to syslog");
                }
                self.udp = None;
                self.tcp = None;
                self.retry_at = Some(Instant::now() + RECONNECT_DELAY);
            } else {
                self.retry_at = None;
            }
        }
        let _ = writer.done.send(());
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME yatagarasu PROCID audit - {json}`.
    fn format(&self, record: &Record) -> Vec<u8> {
        let severity = match record.level {
            AuditLevel::Debug => 7,
            AuditLevel::Info => 6,
            AuditLevel::Warn => 4,
            AuditLevel::Error => 3,
        };
        let pri = u16::from(self.config.facility) * 8 + severity;
        let mut message = format!(
            "<{pri}>1 {} {}",
            clock::rfc3339(record.timestamp),
            self.header_tail
        )
        .into_bytes();
        let mut line = record.line();
        line.pop(); // the newline: the frame (datagram or count) delimits it
        message.extend_from_slice(&line);
        message
    }

    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let address = self.config.address.as_str();
        match self.config.protocol {
            SyslogProtocol::Udp => {
                if self.udp.is_none() {
                    let target = tokio::net::lookup_host(address)
                        .await?
                        .next()
                        .ok_or_else(|| io::Error::other("the address resolves to nothing"))?;
                    let local = if target.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let socket = UdpSocket::bind(local).await?;
                    socket.connect(target).await?;
                    self.udp = Some(socket);
                }
                if let Some(socket) = &self.udp {
                    socket.send(message).await?;
                }
            }
            SyslogProtocol::Tcp => {
                if self.tcp.is_none() {
                    self.tcp = Some(TcpStream::connect(address).await?);
                }
                if let Some(stream) = &mut self.tcp {
                    let mut frame = format!("{} ", message.len()).into_bytes();
                    frame.extend_from_slice(message);
                    stream.write_all(&frame).await?;
                }
            }
        }
        Ok(())
    }
}

/// The host name for the HOSTNAME field, `-` when unknown (RFC 5424 NILVALUE).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".to_owned())
}
