//! Request bodies and queries: JSON parsed by hand so that a malformed body is NanoMQ's 400/109
//! (and a well-formed one with wrong fields 400/108), with a message saying what is wrong.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = raw_body(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body as bytes, with the size limit answered as 413.
pub async fn raw_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|e: BytesRejection| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::BadParameter,
                "request body too large",
            )
        } else {
            ApiError::bad_parameter(format!("cannot read the request body: {e}"))
        }
    })
}

/// Parses JSON: a syntax error is 109, a shape error 108.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_json(format!("the body is not valid JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| ApiError::bad_parameter(format!("invalid body: {e}")))
}

/// Query parameters, in order, percent-decoded (an invalid escape is kept as written).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect()
    })
    .unwrap_or_default()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A boolean query value (`true`/`false`).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_parameter(format!("{key} must be true or false, not {value:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_percent_and_plus() {
        let pairs = query_pairs(Some("clientid=a%2Fb&username=x+y&flag&bad=%zz&end=%4"));
        assert_eq!(pairs[0], ("clientid".into(), "a/b".into()));
        assert_eq!(pairs[1], ("username".into(), "x y".into()));
        assert_eq!(pairs[2], ("flag".into(), String::new()));
        assert_eq!(pairs[3], ("bad".into(), "%zz".into()));
        assert_eq!(pairs[4], ("end".into(), "%4".into()));
    }

    #[test]
    fn json_errors_are_109_for_syntax_and_108_for_shape() {
        let syntax = parse_json::<serde_json::Value>(b"{nope").expect_err("syntax");
        assert_eq!(syntax.code, Code::BadJson);
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            a: u8,
        }
        let shape = parse_json::<T>(b"{\"a\":\"x\"}").expect_err("shape");
        assert_eq!(shape.code, Code::BadParameter);
    }
}
