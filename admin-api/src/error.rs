//! API errors: NanoMQ's `{"code": N}` envelope and HTTP status, plus a `message` saying what was
//! wrong. Internal causes are logged here, once, and never sent to the caller.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// NanoMQ's REST error codes (`rest_api.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Code {
    /// 101: RPC error (a broker node or the config store could not be reached).
    RpcError = 101,
    /// 102: unknown error (also: unknown path or method).
    Unknown = 102,
    /// 103: wrong username or password (or an invalid token).
    WrongCredentials = 103,
    /// 104: username or password missing.
    MissingCredentials = 104,
    /// 107: a required parameter is missing.
    MissingParameter = 107,
    /// 108: a parameter is invalid.
    BadParameter = 108,
    /// 109: the body is not valid JSON.
    BadJson = 109,
    /// 112: the client is not connected (or not known).
    ClientOffline = 112,
    /// 116: the token has expired.
    TokenExpired = 116,
    /// 117: the body is not valid HOCON.
    BadHocon = 117,
    /// 118: the configuration could not be written.
    WriteConfigFailed = 118,
}

/// An error answered to the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// NanoMQ code.
    pub code: Code,
    /// What went wrong, for the caller (no internal detail).
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

impl ApiError {
    /// An error with its status, code and message.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400 with code 108.
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadParameter, message)
    }

    /// 400 with code 109.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadJson, message)
    }

    /// 404 with code 112.
    pub fn client_not_found(client_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::ClientOffline,
            format!("client {client_id:?} is not known to any broker node"),
        )
    }

    /// 503 with code 101, logging the cause.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "{what} unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, Code::RpcError, format!("{what} unavailable"))
    }

    /// 502 with code 101 for a broker node that failed a call, logging the cause.
    pub fn node_failed(node: &str, status: &tonic::Status) -> Self {
        tracing::warn!(node, code = ?status.code(), message = status.message(), "broker node call failed");
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::RpcError,
            format!("broker node {node:?} failed the call"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code as u16, message: &self.message };
        (self.status, Json(body)).into_response()
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
