//! The client's address: the socket peer, or — behind `TRUSTED_PROXY_HOPS` reverse proxies — the
//! address the outermost trusted proxy saw, read from the right of `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

/// The client's address as an extractor (unspecified when the server was not started with
/// connect info, as in `oneshot` tests).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.headers, &parts.extensions)))
    }
}

/// The client's address from a request's headers and extensions: its `ConnectInfo` peer and the
/// `TrustedProxyHops` the router puts there (unspecified without connect info).
pub fn client_ip(headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let hops = extensions.get::<TrustedProxyHops>().map_or(0, |h| h.0);
    client_ip_from(headers, peer, hops).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// How many reverse proxies to trust, put into each request's extensions by the router (outside
/// every other layer, so the rate limit finds it too).
#[derive(Clone, Copy)]
pub struct TrustedProxyHops(pub usize);

/// The client's address from a request's headers and its `ConnectInfo` peer.
pub fn client_ip_from(headers: &HeaderMap, peer: Option<SocketAddr>, trusted_hops: usize) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip());
    if trusted_hops == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    // Each trusted proxy appends the address it received the request from; the entry written by
    // the outermost one is `trusted_hops` from the right. Anything left of it is client-supplied.
    forwarded.len().checked_sub(trusted_hops).and_then(|i| forwarded.get(i).copied()).or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: Option<SocketAddr> = Some(SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)), 4000));

    fn forwarded_for(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().expect("header value"));
        headers
    }

    fn client_ip(headers: &HeaderMap, trusted_hops: usize) -> Option<IpAddr> {
        client_ip_from(headers, PEER, trusted_hops)
    }

    #[test]
    fn ignores_forwarded_for_unless_proxies_are_trusted() {
        assert_eq!(client_ip(&forwarded_for("1.2.3.4"), 0), Some(IpAddr::from([10, 0, 0, 1])));
    }

    #[test]
    fn takes_the_address_seen_by_the_outermost_trusted_proxy() {
        let spoofed = forwarded_for("6.6.6.6, 1.2.3.4");
        assert_eq!(client_ip(&spoofed, 1), Some(IpAddr::from([1, 2, 3, 4])));
        assert_eq!(client_ip(&spoofed, 2), Some(IpAddr::from([6, 6, 6, 6])));
        assert_eq!(client_ip(&forwarded_for("garbage"), 1), Some(IpAddr::from([10, 0, 0, 1])));
    }
}
