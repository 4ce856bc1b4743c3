//! l2sw's integration and conformance suites. The forwarding core's own tables and property
//! tests live beside it in `dataplane/tests/`; this package will hold the sandbox harness
//! (a fresh network namespace per test, real TAP/veth ports, frames injected and captured over
//! AF_PACKET) once the daemon puts the core on real ports.
