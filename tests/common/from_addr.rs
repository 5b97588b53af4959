//! Requests sent from a chosen local address (127.0.0.2, ::1, …), so one
//! test process can be several distinct clients on loopback.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use crate::common::{DEADLINE, Resp};

/// One GET of `target` on `proxy` from a socket bound to `local`, with `headers`.
pub(crate) async fn get_from(
    local: IpAddr,
    proxy: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let exchange = async {
        let socket = match local {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        socket.bind(SocketAddr::new(local, 0)).unwrap();
        let stream = socket.connect(proxy).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let mut request = Request::get(target).header("host", proxy.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        conn.abort();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {target} from {local}: no answer within {DEADLINE:?}"))
}
