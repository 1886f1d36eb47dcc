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
  // the last server time seen, moved on by the time passed here since, at the PBX's pace (`pace`: PBX seconds per real
  // second, carried by the server's snapshot and views, so a reloaded page goes on at once at the pace it had).
  let serverNow = null, seenAt = 0, pace = 1;
  function clock(payload) {
    if (!payload) return;
    if (typeof payload.pace === "number" && payload.pace > 0) pace = Math.min(100, Math.max(0.1, payload.pace));
    const t = payload.now;
    if (typeof t !== "number" || t <= 0 || (serverNow !== null && t < serverNow)) return;
    serverNow = t;
    seenAt = Date.now() / 1000;
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
    let ringing = null; // the pop of the call ringing the agent's phone: it has no call card until it is answered
    let dialling = null; // the agent's click-to-dial, from the click until its call card comes ({ number })
    // Colleagues in these states cannot take a transfer (the server refuses it too: BUSY_STATES in cti_panel/controls.py).
    const BUSY = ["ringing", "on_call", "wrap_up", "paused"];
    // "Available" applies only from these states, and never while the phone rings or is on a call.
    const BACK_FROM = ["paused", "wrap_up", "logged_out"];
    // contrib's [callcenter-outbound] rings the number for 60 s; nothing tells the screen that an unanswered dial ended.
    const DIAL_OUT_MS = 65_000;
    const colleagueStates = new Map();
    const buttons = () => app.querySelectorAll("button, select, input, textarea");
    const phoneBusy = () => !!currentCall || !!dialling || (!!me && (me.state === "ringing" || me.state === "on_call"));
    // Buttons apply only when they can: call controls with a call, dial without one, nothing while offline.
    function enable() {
      buttons().forEach((b) => { b.disabled = !online; });
      if (!online) return;
      app.querySelectorAll(".call-only").forEach((b) => { b.disabled = !currentCall; });
      $("dial").disabled = phoneBusy();
      const consulting = !!(currentCall && currentCall.consulting);
      const target = $("xfer-target").selectedOptions[0];
      $("xfer-complete").disabled = $("xfer-cancel").disabled = !consulting;
      $("xfer-blind").disabled = $("xfer-attended").disabled = !currentCall || consulting || !target || target.disabled;
      $("go-available").disabled = !me || !BACK_FROM.includes(me.state) || phoneBusy();
      $("go-logout").disabled = !me || me.state === "logged_out";
      $("hold").hidden = !!(currentCall && currentCall.held);
      $("unhold").hidden = !(currentCall && currentCall.held);
      recordButtons();
    }
    // The call's recording, when its card says (`recording`: "off", "on", "paused", or "unavailable": opted out, or
    // recordings off): each button only when it applies, and its state beside the timer. A card without it leaves them
    // enabled with a call (the server answers each).
    function recordButtons() {
      const rec = currentCall ? currentCall.recording : null;
      const known = ["off", "on", "paused", "unavailable"].includes(rec);
      $("rec-state").hidden = rec !== "on" && rec !== "paused";
      $("rec-state").textContent = rec === "on" ? words.recording_on : rec === "paused" ? words.recording_paused : "";
      if (!known) return;
      $("rec-start").disabled = rec !== "off";
      $("rec-pause").disabled = rec !== "on";
      $("rec-resume").disabled = rec !== "paused";
    }
    const mmss = (secs) => (secs === null || secs === undefined ? "" : hms(Math.round(secs)));
    const caller = (c) => [c.number || "", c.name || ""].filter(Boolean).join(" · ");
    // The card's header: the call, or the call ringing the phone (caller and queue), or the number being dialled.
    function drawCall() {
      const incoming = !currentCall && !!me && me.state === "ringing";
      const outgoing = !currentCall && !incoming && !!dialling;
      const card = $("call");
      card.classList.toggle("idle", !currentCall && !incoming && !outgoing);
      card.classList.toggle("ringing", incoming || outgoing);
      card.classList.toggle("held", !!(currentCall && currentCall.held));
      $("call-label").hidden = !(incoming || outgoing);
      $("call-label").textContent = incoming ? words.ringing : outgoing ? words.dialling : "";
      let text = words.no_call;
      if (currentCall) text = caller(currentCall);
      else if (incoming) text = ringing ? [caller(ringing), ringing.queue || ""].filter(Boolean).join(" · ") : "";
      else if (outgoing) text = dialling.number;
      $("call-state").textContent = text;
    }
    // A pause asked for during a call is taken when the call ends (both ACDs): the agent's row says which until then.
    function drawPauseAfter() {
      const pauseAfter = me && me.pause_after;
      $("pause-after").hidden = !pauseAfter;
      $("pause-after").textContent = pauseAfter ? words.pause_after + ": " + code(pauseAfter) : "";
    }
    const showMe = (row) => {
      me = row;
      clock(row);
      $("state").textContent = label(row.state);
      $("state").className = "badge state-" + row.state;
      $("reason").textContent = row.reason ? code(row.reason) : "";
      // A ring that stopped without an answer: its pop goes.
      if (ringing && !currentCall && row.state !== "ringing" && row.state !== "on_call") {
        if ($("pop").dataset.linkedid === ringing.linkedid) $("pop").hidden = true;
        ringing = null;
      }
      drawPauseAfter();
      drawCall();
      enable();
      tickTimers();
    };
    const showCall = (call) => {
      if (call) {
        clock(call);
        dialling = null;
        if (ringing && ringing.linkedid === call.linkedid) ringing = null;
        if (!currentCall || currentCall.linkedid !== call.linkedid) setTimeout(refresh, 0); // the transfer picker, fresh
      }
      currentCall = call;
      if (!call) $("pop").hidden = true;
      drawCall();
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
    // The transfer picker's agents with their states, from the view (snapshot, refresh); a busy colleague is shown as
    // such and cannot be picked.
    function drawColleagues() {
      document.querySelectorAll("#xfer-target option[data-agent]").forEach((o) => {
        const state = colleagueStates.get(o.dataset.agent);
        o.disabled = BUSY.includes(state);
        o.textContent = o.dataset.agent + (state ? " (" + label(state) + ")" : "");
      });
      enable();
    }
    function colleagues(list) {
      colleagueStates.clear();
      (list || []).forEach((a) => colleagueStates.set(a.name, a.state));
      drawColleagues();
    }
    // Agents' screens are sent no colleague's changes (a broadcast of every agent's change to every agent would not scale),
    // so the view is asked for when a call starts and when the picker is opened; the server refuses a colleague who has
    // become busy since, and says so.
    function refresh() {
      if (online) send("refresh", {}, (r) => { if (r.ok && r.view) { clock(r.view); colleagues(r.view.agents); } });
    }
    const view = (v) => {
      tz = v.tz;
      clock(v);
      if (v.ringing) showPop(v.ringing);
      showMe(v.me);
      showCall(v.call);
      colleagues(v.agents);
      (v.wrapups || []).forEach(wrapupForm);
    };
    socket.on("snapshot", view);
    socket.on("connect", () => { online = true; enable(); });
    socket.on("disconnect", () => { online = false; dialling = null; drawCall(); enable(); });
    socket.on("me", showMe);
    function showPop(pop) {
      clock(pop);
      if (!currentCall || currentCall.linkedid !== pop.linkedid) ringing = pop;
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
      drawCall();
    }
    socket.on("pop", showPop);
    // The agent's click-to-dial did not reach the number (their phone heard it): why, and the card is free again.
    // (Asterisk may say so before it confirms the agent's phone answered: that reply does not cover it.)
    let dialFailed = null;
    socket.on("dial_failed", (f) => {
      const key = f.status === "BUSY" ? "far_busy" : f.status === "NOANSWER" ? "far_no_answer" : "far_unreachable";
      dialling = null;
      dialFailed = words[key].replace("{number}", f.number || "");
      say(dialFailed);
      drawCall();
      enable();
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
    // A call action names the call the screen shows; the button waits for the server's answer (then `after(reply)`).
    const act = (button, name, data, after) => {
      if (!currentCall && name !== "dial" && name !== "state") { say(words.no_call); return; }
      const payload = name === "dial" || name === "state" ? data : Object.assign({ linkedid: currentCall.linkedid }, data || {});
      button.setAttribute("aria-busy", "true");
      send(name, payload, (r) => { button.removeAttribute("aria-busy"); told(r); if (after) after(r); });
    };
    document.querySelectorAll("[data-state]").forEach((b) => b.addEventListener("click", () => {
      const state = b.dataset.state;
      act(b, "state", state === "pause" ? { state: state, reason: $("pause-reason").value } : { state: state });
    }));
    $("dial").addEventListener("click", () => {
      const attempt = { number: $("dial-number").value.trim() };
      say(words.calling_phone);
      dialling = attempt;
      drawCall();
      enable();
      const over = () => { if (dialling === attempt) { dialling = null; drawCall(); enable(); } };
      dialFailed = null;
      act($("dial"), "dial", { number: attempt.number }, (r) => {
        if (r.ok && dialFailed) say(dialFailed);
        if (r.ok) setTimeout(over, DIAL_OUT_MS); else over();
      });
    });
    $("hangup").addEventListener("click", () => act($("hangup"), "hangup"));
    $("hold").addEventListener("click", () => act($("hold"), "hold"));
    $("unhold").addEventListener("click", () => act($("unhold"), "unhold"));
    $("rec-start").addEventListener("click", () => act($("rec-start"), "record", { op: "start" }));
    $("rec-pause").addEventListener("click", () => act($("rec-pause"), "record", { op: "pause" }));
    $("rec-resume").addEventListener("click", () => act($("rec-resume"), "record", { op: "resume" }));
    $("xfer-target").addEventListener("change", () => { $("xfer-number").hidden = $("xfer-target").value !== "number:"; enable(); });
    $("xfer-target").addEventListener("focus", refresh);
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
    // A shortcut presses its button, so a disabled button's shortcut does nothing either.
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
    drawCall();
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
      row("longest", longest(q));
      row("service_level", q.service_level === null ? "–" : q.service_level + "%");
      row("answered", q.answered);
      row("abandoned", q.abandoned);
      row("offered", q.offered);
      if (q.callbacks !== null && q.callbacks !== undefined) row("callbacks", q.callbacks);
      box.append(dl);
      return box;
    }
    // The longest wait ticks on the PBX's clock between the server's updates (which come with each caller's change only).
    const longest = (q) => (q.longest_since ? seconds(q.longest_since) : 0) + " s";
    setInterval(() => document.querySelectorAll("#queues [data-queue]").forEach((box) => {
      const q = queues.get(box.dataset.queue);
      const dd = box.querySelector("dd[data-key=longest]");
      if (q && dd) dd.textContent = longest(q);
    }), 1000);
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
         ["force_pause", "force", { action: "pause" }], ["force_logout", "force", { action: "logout" }]].forEach(([key, name, data]) => {
          const b = el("button", words[key]);
          // a forced pause takes the reason chosen above the table (one of the configured reasons)
          const reason = () => (data.action === "pause" ? { reason: $("force-reason").value } : {});
          b.addEventListener("click", () => send(name, Object.assign({ agent: a.name }, data, reason())));
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
      clock(s);
      tz = s.tz;
      s.queues.forEach((q) => queues.set(q.name, q));
      s.agents.forEach((a) => agents.set(a.name, a));
      drawQueues(); drawAgents();
    });
    socket.on("queue", (q) => { clock(q); queues.set(q.name, q); drawQueues(); });
    socket.on("agent", (a) => { clock(a); agents.set(a.name, a); drawAgents(); });
    setInterval(drawAgents, 5000);
  }
})();
