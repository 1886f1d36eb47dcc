// The panel's browser side: renders what the server pushes, sends requests. Text only
// ever goes in with textContent, so nothing a caller or a CRM sends can run as code.
"use strict";
(function () {
  const words = JSON.parse(document.getElementById("words").textContent);
  const app = document.getElementById("app");
  if (!app) return;
  const page = app.dataset.page;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const say = (text) => { const m = $("message"); if (m) m.textContent = text; };
  const socket = io({ transports: ["websocket"] });
  let nextId = 1;
  let currentCall = null;
  const pending = new Map();

  // Each request's answer goes to `answered(reply)` (by default, the status line): the browser's check refused it at once
  // (ack), or the engine said what happened (reply).
  const told = (r) => say(r.ok ? r.message || words.done : words.refused + ": " + r.error);
  function send(name, data, answered) {
    const id = nextId++;
    pending.set(id, answered || told);
    socket.emit("request", { id: id, name: name, data: data || {} }, (ack) => {
      if (ack && !ack.ok) { const done = pending.get(id); pending.delete(id); if (done) done(ack); }
    });
  }
  socket.on("reply", (r) => {
    const done = pending.get(r.id);
    pending.delete(r.id);
    if (done) done(r);
  });
  // A refused connection after the session ended (logged out, disabled, new password) goes back to the login page.
  socket.on("connect_error", (err) => {
    say(words.offline);
    if (String(err.message).includes("log in")) window.location.assign("/login");
  });
  // Every screen says when the server is gone (what it shows is then no longer the truth); a closed socket is not retried
  // by Socket.IO itself when the server closed it on purpose: try once more (a resync, or the login page).
  const offline = $("offline");
  socket.on("connect", () => { if (offline) offline.hidden = true; });
  socket.on("disconnect", (reason) => {
    if (offline) offline.hidden = false;
    if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
  });

  function label(state) { return words[state] || state; }
  function code(c) { return words["code." + c] || c; }
  // Times in state are on the PBX's clock (the demo's simulator runs its day faster, and a browser's clock may be off):
  // the last server time seen, moved on by the time passed here since.
  // Its pace too: the demo's PBX runs faster than real time, so the pace is measured from the first server time seen.
  let serverNow = null, seenAt = 0, firstServer = null, firstSeen = 0, pace = 1;
  function clock(t) {
    if (typeof t !== "number" || (serverNow !== null && t < serverNow)) return;
    const here = Date.now() / 1000;
    if (firstServer === null) { firstServer = t; firstSeen = here; }
    else if (here - firstSeen > 5) pace = Math.min(100, Math.max(0.1, (t - firstServer) / (here - firstSeen)));
    serverNow = t; seenAt = here;
  }
  function seconds(since) {
    const now = serverNow === null ? Date.now() / 1000 : serverNow + pace * (Date.now() / 1000 - seenAt);
    return Math.max(0, Math.round(now - since));
  }
  // The center's time zone (from the server's snapshot), not the browser's: the agent and the reports see the same clock.
  let tz;
  const localTime = (iso) => new Date(iso).toLocaleString(document.documentElement.lang || "en", { timeZone: tz, dateStyle: "short", timeStyle: "short" });
  function hms(total) {
    const two = (n) => String(n).padStart(2, "0");
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), sec = total % 60;
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(sec);
  }

  if (page === "agent") {
    let me = null;
    let online = false;
    const buttons = () => app.querySelectorAll("button, select, input, textarea");
    // Buttons apply only when they can: call controls with a call, dial without one, nothing while offline.
    function enable() {
      buttons().forEach((b) => { b.disabled = !online; });
      if (!online) return;
      app.querySelectorAll(".call-only").forEach((b) => { b.disabled = !currentCall; });
      $("dial").disabled = !!currentCall;
      const consulting = !!(currentCall && currentCall.consulting);
      $("xfer-complete").disabled = $("xfer-cancel").disabled = !consulting;
      $("xfer-blind").disabled = $("xfer-attended").disabled = !currentCall || consulting;
      $("go-available").disabled = !!me && me.state === "available";
      $("go-logout").disabled = !me || me.state === "logged_out";
      $("hold").hidden = !!(currentCall && currentCall.held);
      $("unhold").hidden = !(currentCall && currentCall.held);
    }
    const mmss = (secs) => (secs === null || secs === undefined ? "" : hms(Math.round(secs)));
    const showMe = (row) => {
      me = row;
      clock(row.now);
      $("state").textContent = label(row.state);
      $("state").className = "badge state-" + row.state;
      $("reason").textContent = row.reason ? code(row.reason) : "";
      enable();
      tickTimers();
    };
    const showCall = (call) => {
      if (call) clock(call.now);
      currentCall = call;
      const card = $("call");
      card.classList.toggle("idle", !call);
      card.classList.toggle("held", !!(call && call.held));
      $("call-state").textContent = call ? [call.number || "", call.name || ""].filter(Boolean).join(" · ") : words.no_call;
      if (!call) $("pop").hidden = true;
      enable();
      tickTimers();
    };
    function tickTimers() {
      $("state-time").textContent = me && me.since ? hms(seconds(me.since)) : "";
      $("call-timer").textContent = currentCall && currentCall.answered_at ? hms(seconds(currentCall.answered_at)) : "";
      const held = currentCall && currentCall.held && currentCall.held_since;
      $("hold-timer").hidden = !held;
      $("hold-timer").textContent = held ? words.on_hold + " " + hms(seconds(currentCall.held_since)) : "";
    }
    setInterval(tickTimers, 1000);
    function colleagues(list) {
      const states = new Map((list || []).map((a) => [a.name, a.state]));
      document.querySelectorAll("#xfer-target option[data-agent]").forEach((o) => {
        const state = states.get(o.dataset.agent);
        o.textContent = o.dataset.agent + (state ? " (" + label(state) + ")" : "");
      });
    }
    const view = (v) => { tz = v.tz; clock(v.now); showMe(v.me); showCall(v.call); colleagues(v.agents); (v.wrapups || []).forEach(wrapupForm); };
    socket.on("snapshot", view);
    socket.on("connect", () => { online = true; enable(); });
    socket.on("disconnect", () => { online = false; enable(); });
    socket.on("me", showMe);
    socket.on("pop", (pop) => {
      $("pop").hidden = false;
      $("pop").dataset.linkedid = pop.linkedid;
      const c = pop.customer;
      $("pop-name").textContent = c && c.name ? c.name : pop.name || words.unknown_customer;
      $("pop-company").textContent = c && c.company ? "· " + c.company : "";
      $("pop-number").textContent = pop.number || "";
      $("pop-queue").textContent = pop.queue || "";
      $("pop-wait").textContent = mmss(pop.wait_s);
      $("pop-digits").textContent = pop.digits || "";
      const list = $("pop-history");
      list.replaceChildren(...(pop.last_calls || []).map((h) => el("li", [
        localTime(h.at), h.queue || "", words["outcome." + h.outcome] || h.outcome,
        ...(h.wrapups || []).map((w) => [w.agent, code(w.disposition), w.notes].filter(Boolean).join(": ")),
      ].filter(Boolean).join(" · "))));
    });
    socket.on("call", showCall);
    // One wrap-up form per call the agent's part of ended (hung up or handed on), kept until the server says it is saved.
    function wrapupForm(end) {
      if (document.querySelector('#wrapups [data-linkedid="' + CSS.escape(end.linkedid) + '"]')) return;
      const form = $("wrapup-form").content.firstElementChild.cloneNode(true);
      form.dataset.linkedid = end.linkedid;
      form.querySelector(".what").textContent = [end.number || "", end.name || "", end.queue || ""].filter(Boolean).join(" · ");
      form.querySelector(".when").textContent = localTime(end.ended_at * 1000);
      const save = form.querySelector(".save");
      save.addEventListener("click", () => {
        const notes = form.querySelector(".notes");
        form.querySelector(".error").textContent = "";
        save.setAttribute("aria-busy", "true");
        send("wrapup", { linkedid: end.linkedid, disposition: form.querySelector(".disposition").value, notes: notes.value }, (r) => {
          save.removeAttribute("aria-busy");
          if (!r.ok) { form.querySelector(".error").textContent = words.refused + ": " + r.error; return; }
          form.remove();
          say(words.saved);
          if ($("pop").dataset.linkedid === end.linkedid && !currentCall) $("pop").hidden = true;
        });
      });
      $("wrapups").append(form);
      enable();
    }
    socket.on("ended", (end) => {
      if (currentCall && currentCall.linkedid === end.linkedid) showCall(null);
      wrapupForm(end);
    });
    // A call action names the call the screen shows; the button waits for the server's answer.
    const act = (button, name, data) => {
      if (!currentCall && name !== "dial" && name !== "state") { say(words.no_call); return; }
      const payload = name === "dial" || name === "state" ? data : Object.assign({ linkedid: currentCall.linkedid }, data || {});
      button.setAttribute("aria-busy", "true");
      send(name, payload, (r) => { button.removeAttribute("aria-busy"); told(r); });
    };
    document.querySelectorAll("[data-state]").forEach((b) => b.addEventListener("click", () => {
      const state = b.dataset.state;
      act(b, "state", state === "pause" ? { state: state, reason: $("pause-reason").value } : { state: state });
    }));
    $("dial").addEventListener("click", () => { say(words.calling_phone); act($("dial"), "dial", { number: $("dial-number").value.trim() }); });
    $("hangup").addEventListener("click", () => act($("hangup"), "hangup"));
    $("hold").addEventListener("click", () => act($("hold"), "hold"));
    $("unhold").addEventListener("click", () => act($("unhold"), "unhold"));
    $("rec-start").addEventListener("click", () => act($("rec-start"), "record", { op: "start" }));
    $("rec-pause").addEventListener("click", () => act($("rec-pause"), "record", { op: "pause" }));
    $("rec-resume").addEventListener("click", () => act($("rec-resume"), "record", { op: "resume" }));
    $("xfer-target").addEventListener("change", () => { $("xfer-number").hidden = $("xfer-target").value !== "number:"; });
    $("xfer-target").addEventListener("focus", () => send("refresh", {}, (r) => { if (r.ok && r.view) colleagues(r.view.agents); }));
    const transfer = (button, how) => {
      const [kind, value] = $("xfer-target").value.split(/:(.*)/s);
      const data = { how: how, kind: kind };
      data[kind] = kind === "number" ? $("xfer-number").value.trim() : value;
      act(button, "transfer", data);
    };
    $("xfer-blind").addEventListener("click", () => transfer($("xfer-blind"), "blind"));
    $("xfer-attended").addEventListener("click", () => transfer($("xfer-attended"), "attended"));
    $("xfer-complete").addEventListener("click", () => act($("xfer-complete"), "complete"));
    $("xfer-cancel").addEventListener("click", () => act($("xfer-cancel"), "cancel"));
    const keys = {
      a: () => $("go-available").click(),
      p: () => $("go-pause").click(),
      h: () => $("hangup").click(),
      o: () => (currentCall && currentCall.held ? $("unhold") : $("hold")).click(),
      t: () => $("xfer-target").focus(),
      d: () => $("dial-number").focus(),
      s: () => { const b = document.querySelector("#wrapups .save"); if (b) b.click(); },
    };
    document.addEventListener("keydown", (e) => {
      const run = e.altKey && !e.ctrlKey && !e.metaKey ? keys[e.key.toLowerCase()] : null;
      if (run) { e.preventDefault(); run(); }
    });
    enable();
  }

  if (page === "wallboard") {
    const queues = new Map();
    const agents = new Map();
    const hhmm = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit" });

    function tile(q) {
      const box = el("article", null, "card tile");
      box.dataset.queue = q.name;
      box.append(el("h2", q.name));
      const dl = el("dl");
      const row = (key, value) => { const dt = el("dt", words[key]); const dd = el("dd", value); dd.dataset.key = key; dl.append(dt, dd); };
      row("waiting", q.waiting);
      row("longest", q.longest_wait_s + " s");
      row("service_level", q.service_level === null ? "–" : q.service_level + "%");
      row("answered", q.answered);
      row("abandoned", q.abandoned);
      row("offered", q.offered);
      if (q.callbacks !== null && q.callbacks !== undefined) row("callbacks", q.callbacks);
      box.append(dl);
      return box;
    }
    function drawQueues() {
      $("queues").replaceChildren(...[...queues.values()].sort((a, b) => a.name.localeCompare(b.name)).map(tile));
      drawChart();
    }
    function drawAgents() {
      const body = $("agents").querySelector("tbody");
      body.replaceChildren(...[...agents.values()].sort((a, b) => a.name.localeCompare(b.name)).map((a) => {
        const tr = el("tr");
        tr.dataset.agent = a.name;
        const state = el("td", label(a.state) + (a.reason ? " (" + code(a.reason) + ")" : ""), "state-" + a.state);
        const actions = el("td");
        [["listen", "spy", { mode: "listen" }], ["whisper", "spy", { mode: "whisper" }], ["barge", "spy", { mode: "barge" }],
         ["force_pause", "force", { action: "pause", reason: "coaching" }], ["force_logout", "force", { action: "logout" }]].forEach(([key, name, data]) => {
          const b = el("button", words[key]);
          b.addEventListener("click", () => send(name, Object.assign({ agent: a.name }, data)));
          actions.append(b);
        });
        tr.append(el("td", a.name), state, el("td", hms(seconds(a.since))), el("td", a.call ? a.call.number + " · " + (a.call.queue || "") : ""), actions);
        return tr;
      }));
    }
    function drawChart() {
      const buckets = new Map();
      queues.forEach((q) => (q.chart || []).forEach((b) => {
        const sum = buckets.get(b.start) || { offered: 0, sl: [] };
        sum.offered += b.offered;
        if (b.service_level !== null) sum.sl.push(b.service_level);
        buckets.set(b.start, sum);
      }));
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      const keys = [...buckets.keys()].sort((a, b) => a - b);
      const width = Math.max(300, keys.length * 24), height = 135, base = 120;
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      svg.setAttribute("width", width);
      svg.setAttribute("height", height);
      const most = Math.max(1, ...keys.map((k) => buckets.get(k).offered));
      let line = "";
      keys.forEach((k, i) => {
        const b = buckets.get(k);
        const bar = document.createElementNS(ns, "rect");
        const h = (b.offered / most) * (base - 20);
        bar.setAttribute("x", i * 24 + 2); bar.setAttribute("y", base - h); bar.setAttribute("width", 18); bar.setAttribute("height", h);
        bar.setAttribute("fill", "#9db7d5");
        const title = document.createElementNS(ns, "title");
        title.textContent = hhmm(k) + " · " + b.offered;
        bar.append(title);
        svg.append(bar);
        if (i % 4 === 0) {
          const tick = document.createElementNS(ns, "text");
          tick.setAttribute("x", i * 24 + 2); tick.setAttribute("y", height - 2); tick.setAttribute("font-size", "11");
          tick.textContent = hhmm(k);
          svg.append(tick);
        }
        if (b.sl.length) {
          const sl = b.sl.reduce((x, y) => x + y, 0) / b.sl.length;
          line += (line ? " L" : "M") + (i * 24 + 11) + " " + (base - (sl / 100) * (base - 20));
        }
      });
      if (line) { const p = document.createElementNS(ns, "path"); p.setAttribute("d", line); p.setAttribute("stroke", "#1b7f3b"); p.setAttribute("fill", "none"); svg.append(p); }
      $("chart").replaceChildren(svg);
    }
    socket.on("snapshot", (s) => {
      clock(s.now);
      tz = s.tz;
      s.queues.forEach((q) => queues.set(q.name, q));
      s.agents.forEach((a) => agents.set(a.name, a));
      drawQueues(); drawAgents();
    });
    socket.on("queue", (q) => { clock(q.now); queues.set(q.name, q); drawQueues(); });
    socket.on("agent", (a) => { clock(a.now); agents.set(a.name, a); drawAgents(); });
    setInterval(drawAgents, 5000);
  }
})();
