//! The JSON-RPC 2.0 API over HTTP and WebSocket (see docs/rpc.md).
