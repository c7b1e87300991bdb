//! broker-core: the MQTT front end of Tern.
//!
//! Not built yet: listeners, connections, sessions, routing, retained messages, wills and `$SYS`
//! arrive with the broker-core issue. There is deliberately no binary until then.
