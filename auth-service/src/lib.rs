//! auth-service: `tern.auth.v1.AuthService` over gRPC.
//!
//! Not built yet: the backends (password file, ACL file, HTTP auth, Redis, JWT) arrive with the
//! auth-service issue. There is deliberately no binary until then.
