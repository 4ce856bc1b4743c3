//! Table `ip l2sw` as nftables netlink messages (libnftnl through `nftnl`, sent with `mnl`),
//! replaced whole in one batch. The chains, as `nft list table ip l2sw` shows them:
//!
//! ```text
//! prerouting  (nat, prerouting, dstnat)  fib daddr type local jump published
//! output      (nat, output, dstnat)      ip daddr != 127.0.0.0/8 fib daddr type local jump published
//! published                              [ip daddr HOST_IP] tcp dport HOST_PORT dnat to IP:PORT
//! postrouting (nat, postrouting, srcnat) ip saddr SUBNET oifname != HOST_PORT masquerade
//!                                        ip saddr SUBNET oifname HOST_PORT ct status dnat masquerade
//! forward     (filter, forward, filter)  ct status dnat accept
//!                                        iifname HOST_PORT oifname != HOST_PORT jump isolation
//! isolation                              oifname HOST_PORT drop
//! ```
//!
//! `fib daddr type local` (Docker's `-m addrtype --dst-type LOCAL`) is not among `nftnl`'s
//! expressions; [`FibDaddrType`] adds it over `nftnl-sys`. Its two `unsafe` blocks (allocate
//! the expression, set its three u32 attributes) are the only ones in l2ctl: written by hand
//! because no well-kept crate offers the expression, kept as small as the FFI allows.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::ptr::NonNull;

use nftnl::expr::{
    Bitwise, Cmp, CmpOp, Conntrack, ConntrackStatus, Expression, Immediate, InterfaceName,
    Ipv4HeaderField, Masquerade, Meta, Nat, NatType, NetworkHeaderField, Payload, Register,
    TcpHeaderField, TransportHeaderField, UdpHeaderField, Verdict,
};
use nftnl::nftnl_sys as sys;
use nftnl::{
    Batch, Chain, ChainType, FinalizedBatch, Hook, MsgType, Policy, ProtoFamily, Rule, Table,
};

use super::{Dnat, Proto, Ruleset, TABLE};

/// `NFT_FIB_RESULT_ADDRTYPE` (linux/netfilter/nf_tables.h): the route type of the address.
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
/// `NFTA_FIB_F_DADDR`: look the destination address up.
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
/// `RTN_LOCAL` (linux/rtnetlink.h): an address of this host.
const RTN_LOCAL: u32 = 2;

/// `fib daddr type`: loads the route type of the packet's destination into register 1.
struct FibDaddrType;

impl Expression for FibDaddrType {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: the name is a NUL-terminated string libnftnl knows; a null result (no
        // memory) is handled below.
        let raw = unsafe { sys::nftnl_expr_alloc(c"fib".as_ptr()) };
        let Some(expr) = NonNull::new(raw) else {
            // As nftnl does for its own expressions: a tiny allocation failed.
            std::process::abort();
        };
        // SAFETY: `expr` is a live fib expression just allocated; the attributes are the fib
        // expression's own u32 attributes (libnftnl/expr.h), set by value.
        unsafe {
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_DREG as u16,
                Register::Reg1.to_raw(),
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_RESULT as u16,
                NFT_FIB_RESULT_ADDRTYPE,
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_FLAGS as u16,
                NFTA_FIB_F_DADDR,
            );
        }
        expr
    }
}

/// `fib daddr type local`: the packet is for one of the host's own addresses.
fn fib_daddr_local(rule: &mut Rule<'_>) {
    rule.add_expr(&FibDaddrType);
    rule.add_expr(&Cmp::new(CmpOp::Eq, RTN_LOCAL));
}

/// A C string of a name l2ctl made (interface and chain names never hold NUL).
fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} holds a NUL byte"),
        )
    })
}

/// `iifname`/`oifname` `op` `name`.
fn ifname(rule: &mut Rule<'_>, meta: Meta, op: CmpOp, name: &str) -> io::Result<()> {
    rule.add_expr(&meta);
    rule.add_expr(&Cmp::new(op, InterfaceName::Exact(cstr(name)?)));
    Ok(())
}

/// `ip saddr`/`ip daddr` in `net` (`op` Eq) or not (Neq).
fn ip_in(rule: &mut Rule<'_>, field: Ipv4HeaderField, op: CmpOp, net: ipnet::Ipv4Net) {
    rule.add_expr(&Payload::Network(NetworkHeaderField::Ipv4(field)));
    rule.add_expr(&Bitwise::new(net.netmask(), Ipv4Addr::UNSPECIFIED));
    rule.add_expr(&Cmp::new(op, net.network()));
}

/// `ct status dnat`: the connection's destination was translated.
fn ct_dnat(rule: &mut Rule<'_>) {
    rule.add_expr(&Conntrack::Status);
    rule.add_expr(&Bitwise::new(ConntrackStatus::DST_NAT.bits(), 0u32));
    rule.add_expr(&Cmp::new(CmpOp::Neq, 0u32));
}

fn verdict(rule: &mut Rule<'_>, v: Verdict) {
    rule.add_expr(&v);
}

fn jump(chain: &str) -> io::Result<Verdict> {
    Ok(Verdict::Jump {
        chain: cstr(chain)?,
    })
}

/// One published port's DNAT rule.
fn dnat(rule: &mut Rule<'_>, d: &Dnat) {
    if let Some(ip) = d.map.host_ip {
        rule.add_expr(&Payload::Network(NetworkHeaderField::Ipv4(
            Ipv4HeaderField::Daddr,
        )));
        rule.add_expr(&Cmp::new(CmpOp::Eq, ip));
    }
    rule.add_expr(&Meta::L4Proto);
    rule.add_expr(&Cmp::new(CmpOp::Eq, d.map.proto.number()));
    rule.add_expr(&Payload::Transport(match d.map.proto {
        Proto::Tcp => TransportHeaderField::Tcp(TcpHeaderField::Dport),
        Proto::Udp => TransportHeaderField::Udp(UdpHeaderField::Dport),
    }));
    // Ports travel in network order; `Cmp` and `Immediate` copy the bytes as they are.
    rule.add_expr(&Cmp::new(CmpOp::Eq, d.map.host_port.to_be()));
    rule.add_expr(&Immediate::new(d.to.octets(), Register::Reg1));
    rule.add_expr(&Immediate::new(d.map.port.to_be(), Register::Reg2));
    rule.add_expr(&Nat {
        nat_type: NatType::DNat,
        family: ProtoFamily::Ipv4,
        ip_register: Register::Reg1,
        port_register: Some(Register::Reg2),
    });
}

/// The batch that replaces the table with `rules`: `add table` (so that the delete finds
/// one), `delete table`, then the table, its chains and rules again, unless `rules` are
/// empty.
fn batch(rules: &Ruleset) -> io::Result<FinalizedBatch> {
    let name = cstr(TABLE)?;
    let table = Table::new(&name, ProtoFamily::Ipv4);
    let mut b = Batch::new();
    b.add(&table, MsgType::Add);
    b.add(&table, MsgType::Del);
    if rules.is_empty() {
        return Ok(b.finalize());
    }
    b.add(&table, MsgType::Add);

    let base = |name: &str, kind: ChainType, hook: Hook, priority: i32| -> io::Result<Chain<'_>> {
        let mut c = Chain::new(cstr(name)?, &table);
        c.set_type(kind);
        c.set_hook(hook, priority);
        c.set_policy(Policy::Accept);
        Ok(c)
    };
    let prerouting = base("prerouting", ChainType::Nat, Hook::PreRouting, -100)?;
    let output = base("output", ChainType::Nat, Hook::Out, -100)?;
    let postrouting = base("postrouting", ChainType::Nat, Hook::PostRouting, 100)?;
    let forward = base("forward", ChainType::Filter, Hook::Forward, 0)?;
    let published = Chain::new(cstr("published")?, &table);
    let isolation = Chain::new(cstr("isolation")?, &table);
    for c in [
        &published,
        &isolation,
        &prerouting,
        &output,
        &postrouting,
        &forward,
    ] {
        b.add(c, MsgType::Add);
    }

    let mut rule = |chain: &Chain<'_>, build: &dyn Fn(&mut Rule<'_>) -> io::Result<()>| {
        let mut r = Rule::new(chain);
        build(&mut r)?;
        b.add(&r, MsgType::Add);
        Ok::<(), io::Error>(())
    };

    // Published ports: to the host's own addresses, from outside and from the host itself.
    rule(&prerouting, &|r| {
        fib_daddr_local(r);
        verdict(r, jump("published")?);
        Ok(())
    })?;
    rule(&output, &|r| {
        ip_in(r, Ipv4HeaderField::Daddr, CmpOp::Neq, loopback_net());
        fib_daddr_local(r);
        verdict(r, jump("published")?);
        Ok(())
    })?;
    for d in &rules.published {
        rule(&published, &|r| {
            dnat(r, d);
            Ok(())
        })?;
    }

    // Leaving: masquerade, and the hairpin of a workload reaching its own network's port.
    for m in &rules.masquerade {
        rule(&postrouting, &|r| {
            ip_in(r, Ipv4HeaderField::Saddr, CmpOp::Eq, m.subnet);
            ifname(r, Meta::OifName, CmpOp::Neq, &m.host_port)?;
            r.add_expr(&Masquerade);
            Ok(())
        })?;
    }
    for m in &rules.hairpin {
        rule(&postrouting, &|r| {
            ip_in(r, Ipv4HeaderField::Saddr, CmpOp::Eq, m.subnet);
            ifname(r, Meta::OifName, CmpOp::Eq, &m.host_port)?;
            ct_dnat(r);
            r.add_expr(&Masquerade);
            Ok(())
        })?;
    }

    // Isolation: a bridge network's traffic through the host never enters another's.
    rule(&forward, &|r| {
        ct_dnat(r);
        verdict(r, Verdict::Accept);
        Ok(())
    })?;
    for hp in &rules.isolated {
        rule(&forward, &|r| {
            ifname(r, Meta::IifName, CmpOp::Eq, hp)?;
            ifname(r, Meta::OifName, CmpOp::Neq, hp)?;
            verdict(r, jump("isolation")?);
            Ok(())
        })?;
        rule(&isolation, &|r| {
            ifname(r, Meta::OifName, CmpOp::Eq, hp)?;
            verdict(r, Verdict::Drop);
            Ok(())
        })?;
    }
    Ok(b.finalize())
}

/// 127.0.0.0/8: the host's loopback addresses, which may not be sent to a workload.
fn loopback_net() -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(Ipv4Addr::LOCALHOST, 8)
        .map(|n| n.trunc())
        .unwrap_or_default()
}

/// Sends the batch replacing table `ip l2sw` with `rules` in this thread's namespace and waits
/// for the kernel's answer to each message; the first error aborts the whole batch.
pub(super) fn replace(rules: &Ruleset) -> io::Result<()> {
    let batch = batch(rules)?;
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    let portid = socket.portid();
    socket.send_all(&batch)?;
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut expected = batch.sequence_numbers();
    while !expected.is_empty() {
        for message in socket.recv(&mut buffer[..])? {
            let message = message?;
            let Some(seq) = expected.next() else {
                return Err(io::Error::other("an answer to a message never sent"));
            };
            mnl::cb_run(message, seq, portid)?;
        }
    }
    Ok(())
}
