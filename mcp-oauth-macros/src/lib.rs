//! Procedural macros for [`mcp-oauth`](https://docs.rs/mcp-oauth).
//!
//! Use them through the `mcp-oauth` crate, which re-exports them; the attributes
//! `#[protected_resource]` and `#[mcp_tool]` arrive with the macros work.
