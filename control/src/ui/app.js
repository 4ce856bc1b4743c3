// The l2sw mode explorer. It renders the explanations embedded in the page (the JSON of
// `l2ctl explain`) and decides nothing itself: every mark is a hop's egress, every reason the
// hop's rule. State lives in the URL fragment (#mode=M&hairpin=on&frame=N&hop=K), so a view
// can be linked, and tests can open one.
"use strict";

const DATA = JSON.parse(document.getElementById("l2sw-data").textContent);
const EXPS = DATA.explanations;
const SVGNS = "http://www.w3.org/2000/svg";
const UPLINK = "uplink";
const UPSTREAM = "upstream";
const $ = (id) => document.getElementById(id);

// The distinct modes, in order, each with its explanations by hairpin setting.
const MODES = [];
for (const e of EXPS) {
  let m = MODES.find((x) => x.name === e.mode);
  if (!m) {
    m = { name: e.mode, about: e.about, by: {} };
    MODES.push(m);
  }
  m.by[hairpinKey(e.upstream_hairpin)] = e;
}

function hairpinKey(h) {
  return h === null || h === undefined ? "none" : h ? "on" : "off";
}

const state = { mode: 0, hairpin: false, frame: 0, hop: 0, playing: null };

function current() {
  const m = MODES[state.mode];
  return m.by[state.hairpin ? "on" : "off"] || m.by.off || m.by.none;
}

// Whether `port` is a way between switches rather than a member's port: `uplink` (to the
// upstream bridge) in the macvlan and ipvlan modes, `vxlan` (into the overlay) on each host
// of the overlay. Told from the data, not from a list of names: every port that is no
// member's is one.
function isWire(e, port) {
  return !e.members.some((m) => m.name === port);
}

// Who receives a frame, walking its hops: every port a hop sent it out of, except the ways
// between switches (it arrives over them as a later hop's way in). The same rule as the core
// run that made the data; the test holds the two together.
function walkReceivers(e, step, upto) {
  const got = [];
  const hops = upto === undefined ? step.hops : step.hops.slice(0, upto + 1);
  for (const h of hops) {
    for (const p of h.egress) {
      if (!isWire(e, p)) got.push(p);
    }
  }
  return got.sort();
}

function reached(receivers) {
  if (receivers.length === 0) return "nobody receives it";
  const names = [];
  for (let i = 0; i < receivers.length; ) {
    const r = receivers[i];
    let n = 0;
    while (receivers[i + n] === r) n++;
    names.push(n === 1 ? r : r + " (" + n + " copies)");
    i += n;
  }
  if (names.length === 1) return names[0] + " receives it";
  return names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " receive it";
}

// ---- the topology, laid out once per explanation ----

function el(name, attrs, parent, text) {
  const n = document.createElementNS(SVGNS, name);
  for (const k in attrs) n.setAttribute(k, attrs[k]);
  if (text !== undefined) n.textContent = text;
  if (parent) parent.appendChild(n);
  return n;
}

function spread(n, from, to) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(from + ((i + 0.5) * (to - from)) / n);
  return out;
}

// Positions: every station, each switch's box, where each port of each switch meets it, each
// switch's host side. An overlay's hosts side by side instead.
function layout(e) {
  const hosts = overlayHosts(e);
  if (hosts.length) return overlayLayout(e, hosts);
  const local = e.members.filter((m) => !m.outside);
  const outside = e.members.filter((m) => m.outside);
  const up = e.upstream_hairpin !== null && e.upstream_hairpin !== undefined;
  const L = { up: up, height: up ? 670 : 340, st: {}, sw: {}, port: {} };
  const xs = spread(local.length, 220, 980);
  local.forEach((m, i) => (L.st[m.name] = { x: xs[i], y: 62, m: m }));
  L.sw.local = { x: 200, y: 170, w: 780, h: 120, label: e.switch, name: e.switch };
  L.port.local = {};
  local.forEach((m, i) => (L.port.local[m.name] = { x: xs[i], y: 170, end: L.st[m.name], endY: 96 }));
  L.host = { local: { x: 20, y: 200, w: 150, h: 60, label: e.switch === "bridge" ? ["host", "(bridge device)"] : ["host", "(uplink's stack)"] } };
  if (up) {
    const ux = 590;
    L.port.local[UPLINK] = { x: ux, y: 290, end: { x: ux, y: 420 }, endY: 420, wire: true };
    L.sw.upstream = { x: 360, y: 420, w: 460, h: 120, label: "upstream bridge", name: UPSTREAM };
    L.port.upstream = {};
    L.port.upstream[UPLINK] = { x: ux, y: 420, end: { x: ux, y: 290 }, endY: 290, wire: true };
    const oxs = spread(outside.length, 360, 820);
    outside.forEach((m, i) => {
      L.st[m.name] = { x: oxs[i], y: 622, m: m };
      L.port.upstream[m.name] = { x: oxs[i], y: 540, end: L.st[m.name], endY: 588 };
    });
    L.host.upstream = { x: 150, y: 450, w: 170, h: 60, label: ["host", "(bridge device)"] };
  }
  // Each host side joins its switch's left edge.
  for (const key of Object.keys(L.host)) {
    const b = L.host[key];
    const to = { x: b.x + b.w, y: b.y + b.h / 2 };
    b.link = { sw: { x: L.sw[key].x, y: to.y }, host: to };
    b.mark = { x: to.x + 8, y: to.y - 20 };
  }
  return L;
}

// The hosts of an overlay, when the hops cross more than one switch and none is the upstream
// bridge: each switch with its members (the ports that are members'), its ways into the
// overlay (the others), and its VTEP, from its members' roles ("… on h1 (VTEP 192.0.2.1)").
// In the order their members are listed.
function overlayHosts(e) {
  const by = new Map();
  for (const s of e.steps) {
    for (const hop of s.hops) {
      if (hop.switch === UPSTREAM) return [];
      if (!by.has(hop.switch)) by.set(hop.switch, new Set());
      hop.ports.forEach((p) => by.get(hop.switch).add(p));
    }
  }
  if (by.size < 2) return [];
  const hosts = Array.from(by.entries()).map(([name, ports]) => {
    const members = e.members.filter((m) => ports.has(m.name));
    const wires = Array.from(ports).filter((p) => isWire(e, p));
    let vtep = null;
    for (const m of members) {
      const r = /\(VTEP ([^)\s]+)\)/.exec(m.role);
      if (r) vtep = r[1];
    }
    return { name: name, members: members, wires: wires, vtep: vtep };
  });
  const first = (hs) => {
    const i = e.members.findIndex((m) => hs.members.includes(m));
    return i < 0 ? e.members.length : i;
  };
  hosts.sort((x, y) => first(x) - first(y) || (x.name < y.name ? -1 : 1));
  return hosts;
}

// An overlay: the hosts side by side, each a bridge with its workloads above, its host side
// (the bridge device) and its VXLAN port below, the port ending at the host's VTEP on the
// underlay that joins them all.
function overlayLayout(e, hosts) {
  const L = { up: false, overlay: true, height: 600, st: {}, sw: {}, port: {}, host: {}, vtep: {} };
  const cols = spread(hosts.length, 0, 1000);
  const half = Math.min(150, 500 / hosts.length - 14);
  hosts.forEach((hs, i) => {
    const c = cols[i];
    const k = hs.name;
    L.sw[k] = { x: c - half, y: 150, w: 2 * half, h: 130, label: hs.name + " bridge", name: hs.name };
    L.port[k] = {};
    const xs = spread(hs.members.length, c - half, c + half);
    hs.members.forEach((m, j) => {
      L.st[m.name] = { x: xs[j], y: 62, m: m };
      L.port[k][m.name] = { x: xs[j], y: 150, end: L.st[m.name], endY: 96 };
    });
    const vx = c + half / 2;
    for (const w of hs.wires) L.port[k][w] = { x: vx, y: 280, end: { x: vx, y: 440 }, endY: 440, wire: true };
    L.vtep[k] = { x: vx, y: 440, ip: hs.vtep, host: hs.name };
    const hx = c - half / 2;
    L.host[k] = {
      x: hx - 70, y: 330, w: 140, h: 56, label: ["host", "(bridge device)"],
      link: { sw: { x: hx, y: 280 }, host: { x: hx, y: 330 } },
      mark: { x: hx + 10, y: 305 },
    };
  });
  L.underlay = { x: 20, y: 480, w: 960, h: 96 };
  return L;
}

// The box a hop's switch is drawn as: by its name (an overlay's hosts, the upstream bridge),
// else the mode's own switch.
function swKey(L, h) {
  if (L.sw[h.switch]) return h.switch;
  return h.switch === UPSTREAM ? "upstream" : "local";
}

// Where the overlay carries hop `i`'s frame: `to`, the hosts of the later hops that take it
// in by their way into the overlay (head-end replication: one copy to each one's VTEP), when
// the hop sent it into the overlay; `from`, the host of the earlier hop that sent it there,
// when the hop took it in from the overlay.
function overlayFlow(e, step, i) {
  const hop = step.hops[i];
  const to = [];
  if (hop.egress.some((p) => isWire(e, p))) {
    for (const x of step.hops.slice(i + 1)) {
      if (x.switch !== hop.switch && isWire(e, x.ingress) && !to.includes(x.switch)) to.push(x.switch);
    }
  }
  let from = null;
  if (isWire(e, hop.ingress)) {
    for (let j = i - 1; j >= 0 && from === null; j--) {
      const x = step.hops[j];
      if (x.switch !== hop.switch && x.egress.some((p) => isWire(e, p))) from = x.switch;
    }
  }
  return { to: to, from: from };
}

// The way a copy takes across the underlay from host a's VTEP to host b's, in lane `lane`
// (copies side by side, not on top of each other).
function underlayRoute(L, a, b, lane) {
  const va = L.vtep[a];
  const vb = L.vtep[b];
  const y = L.underlay.y + 18 + 14 * lane;
  return [{ x: va.x, y: va.y + 40 }, { x: va.x, y: y }, { x: vb.x, y: y }, { x: vb.x, y: vb.y + 40 }];
}

function polyline(points, cls, parent) {
  return el("polyline", { points: points.map((p) => p.x + "," + p.y).join(" "), class: cls }, parent);
}

function drawStage(e, step, hopIndex) {
  const svg = $("topo");
  const L = layout(e);
  svg.setAttribute("viewBox", "0 0 1000 " + L.height);
  while (svg.lastChild && svg.lastChild.id !== "topo-title") svg.removeChild(svg.lastChild);
  const hosts = overlayHosts(e);
  $("topo-title").textContent = "Topology of " + e.mode + ": " + (hosts.length
    ? hosts.map((hs) => hs.name + " (" + hs.members.map((m) => m.name).join(", ") + (hs.vtep ? "; VTEP " + hs.vtep : "") + ")").join(", ") + ", joined by VXLAN over the underlay"
    : e.members.map((m) => m.name).join(", "));
  const hop = step.hops[hopIndex];
  const active = swKey(L, hop);
  const flow = L.overlay ? overlayFlow(e, step, hopIndex) : { to: [], from: null };
  if (L.underlay) drawUnderlay(svg, L);
  const links = el("g", {}, svg);
  const marks = el("g", {}, svg);
  // Earlier hops of this frame: the way it came, drawn faint.
  const past = new Set();
  step.hops.slice(0, hopIndex).forEach((h) => {
    past.add(swKey(L, h) + ":" + h.ingress);
    h.egress.forEach((p) => past.add(swKey(L, h) + ":" + p));
  });
  for (const key of Object.keys(L.port)) {
    for (const name of Object.keys(L.port[key])) {
      const p = L.port[key][name];
      let cls = "link";
      if (key === active) {
        if (hop.egress.includes(name)) cls += " sent";
        else if (name === hop.ingress) cls += " in";
        else cls += " not";
      } else if (past.has(key + ":" + name)) cls += " past";
      el("line", { x1: p.x, y1: p.y, x2: p.end.x, y2: p.endY, class: cls, "data-port": key + ":" + name }, links);
      // An overlay's way between hosts is named where it leaves the bridge.
      if (L.overlay && p.wire) el("text", { x: p.x - 10, y: p.y + 22, class: "portname" }, links, name);
    }
  }
  if (L.overlay) drawOverlayFlow(L, hop, active, flow, links, marks);
  for (const key of Object.keys(L.host)) {
    const b = L.host[key];
    let cls = "link";
    if (key === active) cls += hop.host ? " sent" : " not";
    el("line", { x1: b.link.host.x, y1: b.link.host.y, x2: b.link.sw.x, y2: b.link.sw.y, class: cls }, links);
    const g = el("g", { class: "host" }, svg);
    el("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8 }, g);
    el("text", { x: b.x + b.w / 2, y: b.y + b.h / 2 - 12 }, g, b.label[0]);
    el("text", { x: b.x + b.w / 2, y: b.y + b.h / 2 + 12, class: "small" }, g, b.label[1]);
    if (key === active) {
      const mk = el("text", { x: b.mark.x, y: b.mark.y, class: "mark " + (hop.host ? "ok" : "no") }, marks, hop.host ? "✓" : "✗");
      el("title", {}, mk, hop.host ? "the host side gets a copy" : "not to the host side: " + hop.kernel_fn + ": " + hop.why);
    }
  }
  for (const key of Object.keys(L.sw)) {
    const s = L.sw[key];
    const g = el("g", { class: "sw" + (key === active ? " active" : ""), "data-switch": s.name }, svg);
    el("rect", { x: s.x, y: s.y, width: s.w, height: s.h, rx: 12 }, g);
    el("text", { x: s.x + 16, y: s.y + 36, class: "name" }, g, s.label);
    if (key === active) el("text", { x: s.x + 16, y: s.y + 68, class: "fn" }, g, hop.kernel_fn);
  }
  for (const name of Object.keys(L.st)) {
    const st = L.st[name];
    const g = el("g", { class: "st" + (name === step.from ? " sender" : ""), "data-station": name }, svg);
    el("circle", { cx: st.x, cy: st.y, r: 34 }, g);
    el("text", { x: st.x, y: st.y }, g, name);
    el("title", {}, g, name + " " + st.m.mac + (st.m.ip ? " " + st.m.ip : "") + ": " + st.m.role);
  }
  // The marks of the switch deciding now: the way in, ✓ on each port sent to, ✗ with the
  // rule on the others.
  const ports = L.port[active] || {};
  for (const name of hop.ports) {
    const p = ports[name];
    if (!p) continue;
    const mx = p.x + 12;
    const my = (p.y + p.endY) / 2;
    let mark, cls, tip;
    if (hop.egress.includes(name)) {
      const back = name === hop.ingress ? " (back out the way it came in)" : "";
      [mark, cls, tip] = [back ? "⇢ ✓" : "✓", "ok", "sent out of " + name + back];
    } else if (name === hop.ingress) {
      [mark, cls, tip] = ["⇢ in", "in", "the frame came in here"];
    } else {
      [mark, cls, tip] = ["✗", "no", "not sent out of " + name + ": " + hop.kernel_fn + ": " + hop.why];
    }
    const t = el("text", { x: mx, y: my, class: "mark " + cls, "data-mark": name }, marks, mark);
    el("title", {}, t, tip);
  }
  if (hop.learned) {
    const s = L.sw[active];
    const text = "FDB: " + hop.learned.mac + " → " + hop.learned.port + (hop.learned.moved_from ? " (moved from " + hop.learned.moved_from + ")" : "");
    const g = el("g", { "data-learned": hop.learned.mac }, svg);
    el("rect", { x: s.x + 10, y: s.y + s.h - 38, width: Math.min(440, s.w - 20), height: 30, rx: 6, class: "learn-bg" }, g);
    el("text", { x: s.x + 20, y: s.y + s.h - 17, class: "learn" + (s.w < 460 ? " narrow" : "") }, g, text);
  }
  animate(svg, L, hop, active, flow);
}

// The underlay an overlay's hosts share, and each host's VTEP on it.
function drawUnderlay(svg, L) {
  const u = L.underlay;
  const g = el("g", { class: "underlay" }, svg);
  el("rect", { x: u.x, y: u.y, width: u.w, height: u.h, rx: 40 }, g);
  el("text", { x: u.x + u.w / 2, y: u.y + u.h - 18 }, g, "underlay: VXLAN (UDP 4789) between the VTEPs");
  for (const key of Object.keys(L.vtep)) {
    const v = L.vtep[key];
    const b = el("g", { class: "vtep", "data-vtep": v.ip || "" }, svg);
    el("rect", { x: v.x - 80, y: v.y, width: 160, height: 40, rx: 6 }, b);
    el("text", { x: v.x, y: v.y + 20 }, b, v.ip ? "VTEP " + v.ip : "VTEP");
    el("title", {}, b, v.host + "'s VXLAN tunnel endpoint" + (v.ip ? " " + v.ip : ""));
  }
}

// The overlay's part of a hop: the copies it sent over the underlay (one per VTEP, ✓ at each
// VTEP sent to, ✗ at the others), or the copy it took in, and from where.
function drawOverlayFlow(L, hop, active, flow, links, marks) {
  const words = hop.overlay ? ": " + hop.overlay : "";
  flow.to.forEach((k, lane) => polyline(underlayRoute(L, active, k, lane), "link sent", links));
  if (flow.from !== null && L.vtep[flow.from]) polyline(underlayRoute(L, flow.from, active, 0), "link in", links);
  const sent = hop.egress.some((p) => L.port[active] && L.port[active][p] && L.port[active][p].wire);
  for (const key of Object.keys(L.vtep)) {
    const v = L.vtep[key];
    let mark = null;
    if (key === flow.from) mark = ["⇢", "in", "the copy came from this VTEP" + words];
    else if (sent && key !== active) {
      mark = flow.to.includes(key)
        ? ["✓", "ok", "one copy to " + key + "'s VTEP" + words]
        : ["✗", "no", "no copy to " + key + "'s VTEP" + words];
    }
    if (!mark) continue;
    const t = el("text", { x: v.x - 112, y: v.y + 20, class: "mark " + mark[1], "data-vtep-mark": mark[1], "data-vtep-ip": v.ip || "" }, marks, mark[0]);
    el("title", {}, t, mark[2]);
  }
}

// A point `u` (0 to 1) of the way along `pts`.
function along(pts, u) {
  const seg = [];
  let total = 0;
  for (let i = 1; i < pts.length; i++) {
    const d = Math.hypot(pts[i].x - pts[i - 1].x, pts[i].y - pts[i - 1].y);
    seg.push(d);
    total += d;
  }
  let left = u * total;
  for (let i = 0; i < seg.length; i++) {
    if (left <= seg[i] || i === seg.length - 1) {
      const f = seg[i] === 0 ? 1 : Math.min(1, left / seg[i]);
      return { x: pts[i].x + (pts[i + 1].x - pts[i].x) * f, y: pts[i].y + (pts[i + 1].y - pts[i].y) * f };
    }
    left -= seg[i];
  }
  return pts[pts.length - 1];
}

// Dots: one into the switch by the way in, then one out of every port sent to (the copies
// fanning out; over an overlay, on to every VTEP sent to). Skipped when the reader asked for
// less motion.
// body[data-moving] is "yes" while the dots run and "no" once they rest (for screenshots).
function animate(svg, L, hop, active, flow) {
  const moving = document.body.dataset;
  moving.moving = "yes";
  if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    moving.moving = "no";
    return;
  }
  const ports = L.port[active] || {};
  const inP = ports[hop.ingress];
  const paths = [];
  if (inP) {
    const down = [{ x: inP.end.x, y: inP.endY }, { x: inP.x, y: inP.y }];
    const over = inP.wire && flow.from !== null && L.vtep ? underlayRoute(L, flow.from, active, 0) : [];
    paths.push({ pts: over.concat(down), t0: 0 });
  }
  for (const name of hop.egress) {
    const p = ports[name];
    if (!p) continue;
    const out = [{ x: p.x, y: p.y }, { x: p.end.x, y: p.endY }];
    if (p.wire && flow.to.length) flow.to.forEach((k, lane) => paths.push({ pts: out.concat(underlayRoute(L, active, k, lane)), t0: 0.5 }));
    else paths.push({ pts: out, t0: 0.5 });
  }
  if (hop.host) {
    const b = L.host[active];
    paths.push({ pts: [b.link.sw, b.link.host], t0: 0.5 });
  }
  const dots = paths.map((p) => el("circle", { r: 11, cx: p.pts[0].x, cy: p.pts[0].y, class: "dot" }, svg));
  const start = performance.now();
  const dur = L.overlay ? 1300 : 900;
  function frame(now) {
    const t = Math.min(1, (now - start) / dur);
    paths.forEach((p, i) => {
      const at = along(p.pts, Math.max(0, Math.min(1, (t - p.t0) / 0.5)));
      dots[i].setAttribute("cx", at.x);
      dots[i].setAttribute("cy", at.y);
      dots[i].style.visibility = t < p.t0 ? "hidden" : "visible";
    });
    if (dots.length && !dots[0].isConnected) return; // a newer hop's animation took over
    if (t < 1 && dots.length) requestAnimationFrame(frame);
    else moving.moving = "no";
  }
  requestAnimationFrame(frame);
}

// ---- the words beside the picture ----

function h(tag, text, cls) {
  const n = document.createElement(tag);
  if (text !== undefined) n.textContent = text;
  if (cls) n.className = cls;
  return n;
}

// What a ✓ on port `p` of hop `i` means: a copy for a member, or the frame on its way to the
// next switch (the upstream bridge, back down the uplink, or the overlay's other hosts).
function sentWords(e, step, i, p) {
  if (!isWire(e, p)) return ": receives a copy";
  const hop = step.hops[i];
  if (p === UPLINK) return hop.switch === UPSTREAM ? ": back down the uplink" : ": on to the upstream bridge";
  const to = overlayFlow(e, step, i).to;
  return ": into the overlay" + (to.length ? ", one copy to " + to.join(" and ") : "");
}

function drawDetail(e, step, hopIndex) {
  const d = $("detail");
  d.replaceChildren();
  const hop = step.hops[hopIndex];
  d.appendChild(h("h3", "Frame " + (state.frame + 1) + " of " + e.steps.length + ": " + step.what));
  d.appendChild(h("p", step.header, "hdr"));
  const title = hop.switch === UPSTREAM ? "upstream bridge" : hop.switch;
  d.appendChild(h("p", "Switch " + (hopIndex + 1) + " of " + step.hops.length + ": " + title + ", in by " + hop.ingress + " (" + hop.action + ")"));
  const ul = h("ul");
  ul.id = "port-marks";
  for (const p of hop.ports) {
    let li;
    if (p === hop.ingress && !hop.egress.includes(p)) li = h("li", "⇢ " + p + ": the way in", "in");
    else if (hop.egress.includes(p)) li = h("li", "✓ " + p + sentWords(e, step, hopIndex, p), "ok");
    else li = h("li", "✗ " + p + ": not sent (" + hop.kernel_fn + ")", "no");
    li.dataset.port = p;
    li.dataset.sent = hop.egress.includes(p) ? "yes" : "no";
    ul.appendChild(li);
  }
  const hostLi = hop.host ? h("li", "✓ host side: gets a copy", "ok") : h("li", "✗ host side: no copy", "no");
  ul.appendChild(hostLi);
  d.appendChild(ul);
  const why = h("p", "", "why");
  why.appendChild(h("code", hop.kernel_fn));
  why.appendChild(document.createTextNode(": " + hop.why));
  d.appendChild(why);
  if (hop.overlay) {
    // What the VXLAN port did: the kernel function first, as for the bridge's rule.
    const ov = h("p", "", "why overlay");
    ov.id = "overlay";
    const m = /^(\w+)([\s\S]*)$/.exec(hop.overlay);
    ov.appendChild(h("strong", "VXLAN: "));
    if (m) {
      ov.appendChild(h("code", m[1]));
      ov.appendChild(document.createTextNode(m[2]));
    } else ov.appendChild(document.createTextNode(hop.overlay));
    d.appendChild(ov);
  }
  if (hop.drop) d.appendChild(h("p", "✗ dropped: " + hop.drop.reason + " (" + hop.drop.description + ")", "no"));
  if (hop.learned) {
    const l = hop.learned;
    d.appendChild(h("p", "FDB learns " + l.mac + " on " + l.port + (l.moved_from ? " (moved from " + l.moved_from + ")" : "")));
  }
  const so_far = walkReceivers(e, step, hopIndex);
  const last = hopIndex === step.hops.length - 1;
  const res = h("p", (last ? "⇒ " : "so far: ") + reached(so_far), "result");
  res.id = "result";
  res.dataset.receivers = so_far.join(",");
  res.dataset.final = last ? "yes" : "no";
  d.appendChild(res);
  if (last && step.other_upstream) {
    d.appendChild(h("p", "with hairpin " + (e.upstream_hairpin ? "off" : "on") + " upstream: " + reached(step.other_upstream) + " (press H)"));
  }
  if (last) drawSides(e, state.frame, d);
  if (last && step.hashed) {
    d.appendChild(h("p", "note: the kernel filters multicast through a hash, so an unjoined group can slip through there; l2sw filters exactly"));
  }
}

// ---- the kernel beside l2sw (`verify`, served by `l2ctl ui` run as root) ----

// Matrices of `verify --json`, by mode and upstream setting.
const VERIFIED = {};

function verifyKey(mode, hairpin) {
  return mode + "|" + hairpin;
}

function verifiedRow(e, i) {
  const m = VERIFIED[verifyKey(e.mode, hairpinKey(e.upstream_hairpin))];
  return m ? m.rows[i] : null;
}

// "agree", "hashed" or "differ", with the words and the mark that say it without colour.
function agreement(row) {
  if (row.mark === "same") return ["agree", "✓ kernel and l2sw agree"];
  if (row.mark === "hashed-multicast") return ["hashed", "~ the kernel's multicast hash let an unjoined group through (tolerated)"];
  return ["differ", "✗ kernel and l2sw differ"];
}

function drawSides(e, i, d) {
  const row = verifiedRow(e, i);
  if (!row) return;
  const [cls, words] = agreement(row);
  const box = h("div", undefined, "side " + cls);
  box.id = "sides";
  box.dataset.mark = row.mark;
  box.appendChild(h("p", "Kernel beside l2sw (verify): " + words, "result"));
  const m = VERIFIED[verifyKey(e.mode, hairpinKey(e.upstream_hairpin))];
  const ul = h("ul");
  for (const who of m.receivers) {
    const k = row.kernel.filter((x) => x === who).length;
    const l = row.l2sw.filter((x) => x === who).length;
    const mark = (n) => (n === 0 ? "✗" : n === 1 ? "✓" : "✓×" + n);
    const li = h("li", who + ": kernel " + mark(k) + " | l2sw " + mark(l), k === l ? "ok" : "no");
    li.dataset.who = who;
    ul.appendChild(li);
  }
  box.appendChild(ul);
  d.appendChild(box);
}

async function runVerify() {
  const e = current();
  const status = $("verify-status");
  const hp = e.upstream_hairpin ? "on" : "off";
  status.className = "";
  status.textContent = "running verify " + e.mode + " (upstream hairpin " + hp + ") on the kernel and on l2sw…";
  $("verify").disabled = true;
  try {
    const m = await getJson("/api/verify/" + encodeURIComponent(e.mode) + "?hairpin=" + hp);
    VERIFIED[verifyKey(m.mode, hairpinKey(m.upstream_hairpin))] = m;
    const differ = m.rows.filter((r) => r.mark === "differ").length;
    status.textContent = (differ ? "✗ " : "✓ ") + m.mode + ": kernel and l2sw agree on " + (m.rows.length - differ) + " of " + m.rows.length + " frames";
    status.className = differ ? "error" : "ok";
    status.dataset.done = verifyKey(m.mode, hairpinKey(m.upstream_hairpin));
  } catch (err) {
    status.textContent = "✗ verify: " + err.message;
    status.className = "error";
    status.dataset.done = "error";
  }
  $("verify").disabled = false;
  render();
}

function drawFrames(e) {
  const ol = $("frame-list");
  ol.replaceChildren();
  e.steps.forEach((s, i) => {
    const li = h("li");
    const b = h("button", (i + 1) + ". " + s.what + " ⇒ " + reached(walkReceivers(e, s)));
    b.type = "button";
    b.dataset.step = String(i + 1);
    b.dataset.receivers = walkReceivers(e, s).join(",");
    const row = verifiedRow(e, i);
    if (row) {
      const [cls, words] = agreement(row);
      b.classList.add(cls);
      b.dataset.verify = row.mark;
      b.textContent = words.slice(0, 1) + " " + b.textContent;
      b.title = words;
    }
    if (i === state.frame) b.setAttribute("aria-current", "step");
    b.addEventListener("click", () => {
      pause();
      go(i, 0);
    });
    li.appendChild(b);
    ol.appendChild(li);
  });
}

// Every explanation's frames as the page walks them, for people who read with a screen
// reader and for the browser test.
function drawWalk() {
  const body = $("walk").tBodies[0];
  body.replaceChildren();
  for (const e of EXPS) {
    e.steps.forEach((s, i) => {
      const tr = h("tr");
      tr.dataset.mode = e.mode;
      tr.dataset.hairpin = hairpinKey(e.upstream_hairpin);
      tr.dataset.step = String(i + 1);
      tr.dataset.receivers = walkReceivers(e, s).join(",");
      tr.appendChild(h("td", e.mode + " (upstream hairpin " + hairpinKey(e.upstream_hairpin) + ")"));
      tr.appendChild(h("td", (i + 1) + ". " + s.what));
      tr.appendChild(h("td", reached(walkReceivers(e, s))));
      body.appendChild(tr);
    });
  }
}

function render() {
  const e = current();
  const step = e.steps[state.frame];
  $("mode").value = MODES[state.mode].name;
  const hp = $("hairpin");
  const hasUp = !!MODES[state.mode].by.on;
  hp.disabled = !hasUp;
  hp.setAttribute("aria-pressed", hasUp && state.hairpin ? "true" : "false");
  hp.textContent = hasUp ? "Upstream hairpin: " + (state.hairpin ? "on ✓" : "off ✗") : "No upstream bridge";
  $("play").disabled = !!state.playing;
  $("pause").disabled = !state.playing;
  const about = $("about");
  about.replaceChildren();
  about.appendChild(h("strong", e.mode + ": "));
  about.appendChild(document.createTextNode(e.about));
  document.body.dataset.mode = e.mode;
  document.body.dataset.hairpin = hairpinKey(e.upstream_hairpin);
  document.body.dataset.frame = String(state.frame + 1);
  document.body.dataset.hop = String(state.hop + 1);
  drawStage(e, step, state.hop);
  drawDetail(e, step, state.hop);
  drawFrames(e);
  writeHash();
}

// ---- moving about ----

function go(frame, hop) {
  const e = current();
  state.frame = Math.max(0, Math.min(frame, e.steps.length - 1));
  state.hop = Math.max(0, Math.min(hop, e.steps[state.frame].hops.length - 1));
  render();
}

function step() {
  const e = current();
  if (state.hop + 1 < e.steps[state.frame].hops.length) return go(state.frame, state.hop + 1), true;
  if (state.frame + 1 < e.steps.length) return go(state.frame + 1, 0), true;
  return false;
}

function back() {
  if (state.hop > 0) return go(state.frame, state.hop - 1);
  if (state.frame > 0) {
    const prev = current().steps[state.frame - 1];
    go(state.frame - 1, prev.hops.length - 1);
  }
}

function play() {
  if (state.playing) return;
  const e = current();
  const f = e.steps[state.frame];
  if (state.frame === e.steps.length - 1 && state.hop === f.hops.length - 1) go(0, 0);
  state.playing = setInterval(() => {
    if (!step()) pause();
  }, 1600);
  render();
}

function pause() {
  if (!state.playing) return;
  clearInterval(state.playing);
  state.playing = null;
  render();
}

function setMode(i) {
  state.mode = (i + MODES.length) % MODES.length;
  go(0, 0);
}

function toggleHairpin() {
  if (!MODES[state.mode].by.on) return;
  state.hairpin = !state.hairpin;
  go(state.frame, state.hop);
}

function writeHash() {
  const hash = "#mode=" + MODES[state.mode].name + "&hairpin=" + (state.hairpin ? "on" : "off") + "&frame=" + (state.frame + 1) + "&hop=" + (state.hop + 1);
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// #mode=M&hairpin=on|off&frame=N&hop=K|end (all optional).
function readHash() {
  const q = {};
  for (const kv of location.hash.replace(/^#/, "").split("&")) {
    const [k, v] = kv.split("=");
    if (k) q[decodeURIComponent(k)] = decodeURIComponent(v || "");
  }
  const i = MODES.findIndex((m) => m.name === q.mode);
  if (i >= 0) state.mode = i;
  const bad = q.mode && i < 0 ? q.mode : null;
  if (q.hairpin) state.hairpin = q.hairpin === "on";
  const frame = Math.max(0, (parseInt(q.frame, 10) || 1) - 1);
  const e = current();
  const f = e.steps[Math.min(frame, e.steps.length - 1)];
  const hop = q.hop === "end" ? f.hops.length - 1 : Math.max(0, (parseInt(q.hop, 10) || 1) - 1);
  go(frame, hop);
  if (bad !== null) showError("✗ unknown mode \"" + bad + "\": choose one of " + MODES.map((m) => m.name).join(", "));
}

// A message where the mode's summary goes, in words and with a ✗ (an unknown mode in a link).
function showError(message) {
  const p = h("p", message, "error");
  p.id = "error";
  p.setAttribute("role", "alert");
  $("about").prepend(p);
}

function setup() {
  const sel = $("mode");
  MODES.forEach((m, i) => {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + (m.by.on ? " (upstream bridge)" : "");
    sel.appendChild(o);
    o.dataset.index = String(i);
  });
  sel.addEventListener("change", () => setMode(MODES.findIndex((m) => m.name === sel.value)));
  $("hairpin").addEventListener("click", toggleHairpin);
  $("step").addEventListener("click", () => { pause(); step(); });
  $("back").addEventListener("click", () => { pause(); back(); });
  $("play").addEventListener("click", play);
  $("pause").addEventListener("click", pause);
  $("verify").addEventListener("click", runVerify);
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const k = ev.key;
    if (k === "ArrowRight") { pause(); step(); }
    else if (k === "ArrowLeft") { pause(); back(); }
    else if (k === " ") { state.playing ? pause() : play(); }
    else if (k === "h" || k === "H") toggleHairpin();
    else if (k === "m") setMode(state.mode + 1);
    else if (k === "M") setMode(state.mode - 1);
    else if (/^[1-9]$/.test(k)) { pause(); go(parseInt(k, 10) - 1, 0); }
    else if ((k === "k" || k === "K") && LIVE && !$("verify").disabled) runVerify();
    else return;
    ev.preventDefault();
  });
  window.addEventListener("hashchange", readHash);
  drawWalk();
  if (/(^#|&)tour=1(&|$)/.test(location.hash)) tour();
  readHash();
  if (LIVE) setupLive();
}

// #tour=1: the keyboard walk a reader would do, done at once (for the browser test and for
// checking a page by eye): every mode (M), each upstream setting (H), every frame stepped
// (→) hop by hop to its end, writing what the page then shows into #tour.
function tour() {
  const key = (k) => document.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
  const list = $("tour") || document.body.appendChild(h("ol", undefined, "sr-only"));
  list.id = "tour";
  state.hairpin = false;
  setMode(0);
  let guard = 100000;
  for (let mi = 0; mi < MODES.length; mi++) {
    for (const hp of MODES[mi].by.on ? [false, true] : [false]) {
      if (state.hairpin !== hp) key("h");
      key("1");
      for (;;) {
        const res = $("result");
        if (res.dataset.final === "yes") {
          const li = h("li", document.body.dataset.mode + " " + document.body.dataset.hairpin + " " + document.body.dataset.frame + ": " + res.textContent);
          li.dataset.mode = document.body.dataset.mode;
          li.dataset.hairpin = document.body.dataset.hairpin;
          li.dataset.step = document.body.dataset.frame;
          li.dataset.receivers = res.dataset.receivers;
          li.dataset.marked = Array.from(document.querySelectorAll("#port-marks li"))
            .filter((x) => x.dataset.sent === "yes").map((x) => x.dataset.port).join(",");
          list.appendChild(li);
        }
        const before = document.body.dataset.frame + "/" + document.body.dataset.hop;
        key("ArrowRight");
        if (before === document.body.dataset.frame + "/" + document.body.dataset.hop || --guard < 0) break;
      }
    }
    key("m");
  }
  state.hairpin = false;
  setMode(0);
}

// ---- a running network, from the daemon (served by `l2ctl ui` only) ----

const live = { network: null, since: 0, prev: {}, timer: null, records: [], flashes: [] };
// How often the live view asks for counters and traced frames.
const POLL_MS = 1000;

async function getJson(url) {
  // The header tells the server the request is the page's own (another site's page cannot
  // send it here); verify, which builds namespaces, needs it.
  const r = await fetch(url, { cache: "no-store", headers: { "X-L2sw-Explorer": "1" } });
  const body = await r.json().catch(() => ({ error: "not JSON (" + r.status + ")" }));
  if (!r.ok) throw new Error(body.error || String(r.status));
  return body;
}

async function setupLive() {
  $("live").hidden = false;
  $("verify").hidden = false;
  for (const x of document.querySelectorAll(".live-only")) x.hidden = false;
  const sel = $("network");
  sel.addEventListener("change", () => watch(sel.value));
  try {
    const nets = await getJson("/api/networks");
    sel.replaceChildren();
    for (const n of nets) {
      const o = document.createElement("option");
      o.value = n.name;
      o.textContent = n.name + " (" + n.ports.length + " ports)";
      sel.appendChild(o);
    }
    const want = new URLSearchParams(location.search).get("network");
    const name = want || (nets[0] && nets[0].name);
    if (name) {
      sel.value = name;
      watch(name);
    } else {
      $("live-status").textContent = "The daemon has no networks.";
    }
  } catch (err) {
    $("live-status").textContent = "✗ " + err.message;
    $("live-status").className = "error";
  }
}

function watch(name) {
  live.network = name;
  live.since = 0;
  live.prev = {};
  live.records = [];
  $("feed").replaceChildren();
  if (live.timer) clearInterval(live.timer);
  tick();
  live.timer = setInterval(tick, POLL_MS);
}

async function tick() {
  const name = live.network;
  const status = $("live-status");
  try {
    const [stats, feed] = await Promise.all([
      getJson("/api/networks/" + encodeURIComponent(name) + "/stats"),
      getJson("/api/networks/" + encodeURIComponent(name) + "/trace?since=" + live.since),
    ]);
    if (name !== live.network) return;
    status.textContent = "✓ live: " + name;
    status.className = "ok";
    drawCounters(stats);
    drawFeed(feed);
  } catch (err) {
    status.textContent = "✗ " + name + ": " + err.message;
    status.className = "error";
  }
}

function drawCounters(stats) {
  const body = $("counters").tBodies[0];
  body.replaceChildren();
  const boxes = $("live-ports");
  if (boxes.children.length !== stats.ports.length) {
    boxes.replaceChildren();
    for (const p of stats.ports) {
      const b = h("span", p.name, "port");
      b.dataset.port = p.name;
      boxes.appendChild(b);
    }
  }
  for (const p of stats.ports) {
    const tr = h("tr");
    tr.dataset.port = p.name;
    const drops = Object.entries(p.drops || {}).map(([k, v]) => k + " " + v).join(", ") || "0";
    const prev = live.prev[p.name] || {};
    for (const [k, v] of [["name", p.name], ["rx", p.rx], ["tx", p.tx], ["forwarded", p.forwarded], ["drops", drops]]) {
      const td = h("td", String(v));
      td.dataset.k = k;
      if (k !== "name" && prev[k] !== undefined && prev[k] !== v) td.className = "rose";
      tr.appendChild(td);
    }
    live.prev[p.name] = { rx: p.rx, tx: p.tx, forwarded: p.forwarded, drops: drops };
    body.appendChild(tr);
  }
  drawOverlay(stats.ports.find((p) => p.overlay));
}

// An overlay network's VXLAN port: its VNI and settings, and each remote VTEP's counters.
function drawOverlay(port) {
  $("overlay-live").hidden = !port;
  if (!port) return;
  const o = port.overlay;
  const onOff = (b) => (b ? "on" : "off");
  $("overlay-about").textContent =
    port.name + ": VNI " + o.vni + ", local VTEP " + o.local + ":" + o.port + ", learning " + onOff(o.learning) +
    ", frames from unknown VTEPs " + (o.learn_remotes ? "accepted" : "refused") + " (" + o.counters.unknown_sender + " so far)";
  const body = $("remotes").tBodies[0];
  body.replaceChildren();
  for (const r of o.remotes) {
    const tr = h("tr");
    tr.dataset.vtep = r.vtep;
    const how = r.flood ? "flood list" : "static or learned";
    for (const [k, v] of [["vtep", r.vtep], ["how", how], ["rx", r.counters.rx], ["tx", r.counters.tx], ["tx_dropped", r.counters.tx_dropped]]) {
      const td = h("td", String(v));
      td.dataset.k = k;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function drawFeed(feed) {
  live.since = feed.last;
  $("feed-stats").textContent = feed.seen + " frames traced, " + feed.sampled_out + " left out by sampling, " + feed.lost + " lost";
  const ol = $("feed");
  for (const r of feed.records) {
    const li = h("li");
    const to = r.egress.concat(r.host ? ["(host)"] : []);
    const b = h("button", "#" + r.n + " in " + r.ingress + ": " + r.summary + (r.drop ? "  ✗ " + r.drop : "  → " + (to.join(", ") || "nobody")));
    b.type = "button";
    b.dataset.n = String(r.n);
    b.addEventListener("click", () => showRecord(r));
    li.appendChild(b);
    ol.insertBefore(li, ol.firstChild);
    while (ol.children.length > 50) ol.removeChild(ol.lastChild);
  }
  // The frames of this poll, one after another across the poll's second: each lights its
  // way in and the ports it went out of.
  for (const t of live.flashes) clearTimeout(t);
  live.flashes = feed.records.map((r, i) => setTimeout(() => flashPorts(r), (i * POLL_MS) / feed.records.length));
}

function flashPorts(r) {
  const now = $("live-now");
  now.textContent = "#" + r.n + " in " + r.ingress + ": " + r.summary + (r.drop ? "  ✗ dropped: " + r.drop : "  → " + (r.egress.concat(r.host ? ["(host)"] : []).join(", ") || "nobody"));
  now.dataset.n = String(r.n);
  for (const b of $("live-ports").children) {
    b.className = "port";
    if (b.dataset.port === r.ingress) b.className = "port in";
    else if (r.egress.includes(b.dataset.port)) b.className = "port sent";
  }
}

function showRecord(r) {
  flashPorts(r);
  const lines = [
    "#" + r.n + "  in " + r.ingress + ", " + r.len + " bytes" + (r.vid ? ", vlan " + r.vid : ""),
    r.summary,
    r.learned ? "learn: source " + r.learned : "learn: nothing",
    "rule:  " + r.kernel_fn + ": " + r.rule,
    r.drop ? "✗ dropped: " + r.drop + " (" + (r.drop_why || "") + ")" : "✓ to: " + (r.egress.concat(r.host ? ["(host)"] : []).join(", ") || "nobody"),
  ];
  $("feed-detail").textContent = lines.join("\n");
}

setup();
