//! SPEC.md's open questions, listed until a kernel (or moby) comparison settles them. Each is
//! ignored with the reason; `cargo test --workspace -- --ignored` shows them.
//! (ipvlan's ARP/ND question sits with the ipvlan tables in `dataplane/tests/ipvlan.rs`.)

#[test]
#[ignore = "open question (SPEC.md §5): bridge gateway choice with --ip-range and no --gateway; \
            awaiting l2ctl's IPAM and a comparison with moby's defaultipam"]
fn open_question_bridge_gateway_with_ip_range_and_no_gateway() {
    unimplemented!("settled with l2ctl's IPAM")
}
