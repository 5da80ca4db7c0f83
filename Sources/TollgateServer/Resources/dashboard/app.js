// Tollgate dashboard: account holders and operators, on the JSON API and the live event
// stream (SSE read with fetch, so the token travels in the Authorization header, never in
// a URL). No third-party code; works with no internet access.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: null, role: null, account: null, streams: [], refreshTimer: null, refreshPending: false };

// ---------- API ----------
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = json && json.error ? json.error : { code: "http_" + res.status, message: text || res.statusText };
    throw new ApiError(res.status, err.code, err.message);
  }
  return json;
}
const seg = (id) => encodeURIComponent(id);

// ---------- formatting ----------
function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) {
    el.textContent = text;
    el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash");
  }
}
function setStatus(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = kind === "error" ? "error" : kind === "ok" ? "ok" : "muted";
}
function row(cells, numeric) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c == null ? "" : String(c);
    if (numeric && numeric.includes(i)) td.className = "num";
    tr.appendChild(td);
  });
  return tr;
}

// ---------- connection indicator ----------
function setConn(s, label) {
  const el = $("conn-state");
  el.dataset.state = s;
  el.textContent = label || { idle: "not connected", connecting: "connecting…", live: "live", reconnecting: "reconnecting…", lost: "connection lost, retrying…", error: "stream refused" }[s];
}

// ---------- SSE over fetch, resuming by Last-Event-ID ----------
// Reconnects by itself with backoff; the server resumes after the last id seen, so nothing
// is lost or doubled. `onMessage(event, data)`; `onState(state)`.
function openStream(path, onMessage, onState) {
  const stream = { stopped: false, lastId: null, controller: null };
  let backoff = 500;
  (async () => {
    while (!stream.stopped) {
      onState(stream.lastId ? "reconnecting" : "connecting");
      stream.controller = new AbortController();
      let watchdog = null;
      const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => stream.controller.abort(), 45000); };
      try {
        const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
        if (stream.lastId) headers["Last-Event-ID"] = stream.lastId;
        const res = await fetch(path, { headers, signal: stream.controller.signal, cache: "no-store" });
        if (res.status === 401 || res.status === 403 || res.status === 404) {
          onState("error");
          stream.stopped = true;
          break;
        }
        if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        kick();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = "message", data = "", id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "event") event = val;
              else if (field === "data") data += (data ? "\n" : "") + val;
              else if (field === "id") id = val;
            }
            if (id !== null) stream.lastId = id;
            if (!data) continue;
            backoff = 500;
            onState("live");
            try { onMessage(event, JSON.parse(data)); } catch (e) { console.error(e); }
          }
        }
      } catch (e) {
        if (stream.stopped) break;
      } finally {
        clearTimeout(watchdog);
      }
      if (stream.stopped) break;
      onState("lost");
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 8000);
    }
  })();
  stream.stop = () => { stream.stopped = true; if (stream.controller) stream.controller.abort(); };
  state.streams.push(stream);
  return stream;
}
function stopStreams() {
  state.streams.forEach((s) => s.stop());
  state.streams = [];
}

// ---------- sign in ----------
async function signIn(token) {
  state.token = token;
  setStatus("sign-in-error", "", "muted");
  $("sign-in-error").hidden = true;
  $("sign-in-btn").disabled = true;
  try {
    const me = await api("GET", "/v1/whoami");
    state.role = me.role;
    sessionStorage.setItem("tollgate-token", token);
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    if (me.role === "admin") {
      $("who").textContent = "operator";
      showOperator();
    } else if (me.role === "account") {
      $("who").textContent = "account " + me.account;
      showAccount(me.account);
    } else {
      throw new ApiError(403, "forbidden", "This token is for gateways; use an account token or the admin token.");
    }
  } catch (e) {
    state.token = null;
    sessionStorage.removeItem("tollgate-token");
    $("sign-in-error").hidden = false;
    $("sign-in-error").textContent = e.status === 401 ? "That token is not valid." : e.message;
  } finally {
    $("sign-in-btn").disabled = false;
  }
}
function signOut() {
  stopStreams();
  sessionStorage.removeItem("tollgate-token");
  location.reload();
}

// ---------- operator ----------
function showOperator() {
  stopStreams();
  setConn("idle");
  $("account").hidden = true;
  $("operator").hidden = false;
  findAccounts("");
}
async function findAccounts(prefix) {
  setStatus("find-state", "Loading…");
  const table = $("accounts-table"), body = table.querySelector("tbody");
  try {
    const res = await api("GET", "/v1/accounts?limit=100&prefix=" + encodeURIComponent(prefix));
    body.replaceChildren();
    res.accounts.forEach((a) => {
      const tr = row([a.id, a.status, a.balance, a.held, a.available], [2, 3, 4]);
      tr.className = "clickable";
      tr.addEventListener("click", () => showAccount(a.id));
      body.appendChild(tr);
    });
    table.hidden = res.accounts.length === 0;
    setStatus("find-state", res.accounts.length === 0 ? "No accounts match." : res.accounts.length + " account(s). Click one to open it.");
  } catch (e) {
    table.hidden = true;
    setStatus("find-state", "Could not load accounts: " + e.message, "error");
  }
}
function watchFirehose(prefix, kinds) {
  stopStreams();
  const rows = $("firehose-rows");
  rows.replaceChildren();
  let q = "?account_prefix=" + encodeURIComponent(prefix);
  if (kinds) q += "&kind=" + encodeURIComponent(kinds);
  openStream("/v1/events" + q, (event, data) => {
    if (event === "ready") { setStatus("firehose-state", "Watching; events appear as they happen."); return; }
    if (event === "lagged") { setStatus("firehose-state", "Fell behind; reconnecting…", "error"); return; }
    if (event === "gap") { setStatus("firehose-state", "Some events may have been missed (server reconnected to Redis).", "error"); return; }
    if (event !== "change" && event !== "alert") return;
    const tr = row([fmtTime(data.time), data.account, event === "alert" ? "ALERT low balance" : data.kind,
      event === "alert" ? "< " + data.threshold : data.amount, data.available], [3, 4]);
    rows.prepend(tr);
    while (rows.children.length > 200) rows.lastChild.remove();
  }, (s) => { setConn(s); if (s === "error") setStatus("firehose-state", "The firehose was refused.", "error"); });
}

// ---------- account ----------
function showAccount(id) {
  stopStreams();
  state.account = id;
  $("operator").hidden = true;
  $("account").hidden = false;
  $("back-to-operator").hidden = state.role !== "admin";
  $("account-title").textContent = "Account " + id;
  setStatus("account-state", "Loading…");
  ["balance", "held", "available", "paid", "promotional"].forEach((k) => { $(k).textContent = "–"; });
  $("activity-rows").replaceChildren();
  setStatus("activity-state", "Waiting for changes…");
  $("deposit-receive").hidden = true;
  loadAccount();
  loadPayments();
  loadUsage();
  const path = "/v1/accounts/" + seg(id) + "/events";
  openStream(path, onAccountEvent, (s) => {
    setConn(s);
    if (s === "error") setStatus("account-state", "The live stream was refused for this account.", "error");
    else if (s === "lost" || s === "reconnecting") setStatus("account-state", "Connection lost; resuming automatically…", "error");
  });
}
function showFigures(a) {
  setText("balance", a.balance);
  setText("held", a.held);
  setText("available", a.available);
  if (a.paid !== undefined) setText("paid", a.paid);
  if (a.promotional !== undefined) setText("promotional", a.promotional);
}
async function loadAccount() {
  try {
    const a = await api("GET", "/v1/accounts/" + seg(state.account));
    if (a.paid !== undefined) setText("paid", a.paid);
    if (a.promotional !== undefined) setText("promotional", a.promotional);
  } catch (e) {
    setStatus("account-state", "Could not load the account: " + e.message, "error");
  }
}
function onAccountEvent(event, data) {
  if (event === "snapshot") {
    showFigures(data);
    $("alert-badge").hidden = !(data.low_balance_alert && !data.low_balance_alert.armed);
    setStatus("account-state", data.reset ? "Live (reloaded: the gap was too long to replay)." : "Live: changes appear as they happen.", "ok");
  } else if (event === "change") {
    showFigures(data);
    setStatus("account-state", "Live: changes appear as they happen.", "ok");
    const rows = $("activity-rows");
    rows.prepend(row([fmtTime(data.time), data.kind, data.amount, data.available], [2, 3]));
    while (rows.children.length > 50) rows.lastChild.remove();
    setStatus("activity-state", "");
    scheduleRefresh();
  } else if (event === "alert") {
    $("alert-badge").hidden = false;
    setStatus("activity-state", "Low balance: available credit fell below " + data.threshold + ".", "error");
  } else if (event === "lagged") {
    setStatus("account-state", "Fell behind; resuming…", "error");
  }
}
// Paid/promotional split, payments and usage come from JSON reads; refresh them as changes
// arrive, at most once a second: the first change refreshes at once, and the changes of the
// following second fold into one refresh at its end (a busy account still refreshes every second).
function scheduleRefresh() {
  if (state.refreshTimer) { state.refreshPending = true; return; }
  state.refreshPending = false;
  loadAccount(); loadPayments(); loadUsage();
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    if (state.refreshPending) scheduleRefresh();
  }, 1000);
}
async function loadPayments() {
  const table = $("payments-table"), body = table.querySelector("tbody");
  try {
    const res = await api("GET", "/v1/accounts/" + seg(state.account) + "/payments?limit=20");
    body.replaceChildren(...res.entries.map((e) => row([fmtTime(e.time), e.kind, e.amount, e.balance], [2, 3])));
    table.hidden = res.entries.length === 0;
    setStatus("payments-state", res.entries.length === 0 ? "No payments yet." : "");
  } catch (e) {
    table.hidden = true;
    setStatus("payments-state", e.status === 404 && e.code === "not_found" ? "Payment history is not available on this server." : "Could not load payments: " + e.message, "error");
  }
}
async function loadUsage() {
  const base = "/v1/accounts/" + seg(state.account) + "/usage";
  try {
    const [byDay, byModel] = await Promise.all([api("GET", base + "?by=meter,day"), api("GET", base + "?by=meter,model")]);
    drawUsage(byDay);
    const table = $("breakdown-table"), body = table.querySelector("tbody");
    body.replaceChildren(...byModel.groups.map((g) => row([g.meter, g.model || "", g.quantity, g.amount], [2, 3])));
    if (byModel.groups.length) body.appendChild(row(["Total", "", byModel.total.quantity, byModel.total.amount], [2, 3]));
    table.hidden = byModel.groups.length === 0;
    setStatus("breakdown-state", byModel.groups.length === 0 ? "No usage in this period." : "");
  } catch (e) {
    $("usage-chart").hidden = true;
    $("breakdown-table").hidden = true;
    const msg = e.status === 404 && e.code === "not_found" ? "Usage is not available on this server." : "Could not load usage: " + e.message;
    setStatus("usage-state", msg, "error");
    setStatus("breakdown-state", msg, "error");
  }
}
// A stacked bar chart of amount per day, one colour per meter, drawn on a canvas.
function drawUsage(res) {
  const canvas = $("usage-chart"), legend = $("usage-legend");
  legend.replaceChildren();
  if (!res.groups.length) { canvas.hidden = true; setStatus("usage-state", "No usage in this period."); return; }
  setStatus("usage-state", "");
  canvas.hidden = false;
  const days = [...new Set(res.groups.map((g) => g.period))].sort();
  const meters = [...new Set(res.groups.map((g) => g.meter))].sort();
  const colors = ["#2456d6", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#868e96"];
  const totals = days.map((d) => res.groups.filter((g) => g.period === d).reduce((s, g) => s + parseFloat(g.amount), 0));
  const max = Math.max(...totals, 1e-9);
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, left = 56, bottom = 26, top = 10;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#667"; ctx.strokeStyle = "#dde1e6";
  for (let i = 0; i <= 4; i++) {
    const y = top + (H - top - bottom) * (1 - i / 4);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W, y); ctx.stroke();
    ctx.fillText((max * i / 4).toPrecision(3), 4, y + 4);
  }
  const slot = (W - left) / days.length, bar = Math.max(4, Math.min(40, slot * 0.6));
  days.forEach((d, i) => {
    let y = H - bottom;
    meters.forEach((m, j) => {
      const g = res.groups.find((x) => x.period === d && x.meter === m);
      if (!g) return;
      const h = (H - top - bottom) * parseFloat(g.amount) / max;
      ctx.fillStyle = colors[j % colors.length];
      ctx.fillRect(left + slot * i + (slot - bar) / 2, y - h, bar, h);
      y -= h;
    });
    ctx.fillStyle = "#667";
    ctx.fillText(d.slice(5), left + slot * i + slot / 2 - 14, H - 8);
  });
  meters.forEach((m, j) => {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.className = "swatch-" + (j % colors.length);
    item.append(sw, m);
    legend.appendChild(item);
  });
}

async function deposit(amount, provider) {
  setStatus("deposit-state", "Creating the deposit…");
  $("deposit-receive").hidden = true;
  try {
    const d = await api("POST", "/v1/accounts/" + seg(state.account) + "/deposits", { amount, token: "USDT", provider });
    const r = d.receive || {};
    $("deposit-network").textContent = r.network || "";
    $("deposit-address").textContent = r.address || "";
    $("deposit-pay").textContent = (r.amount || d.amount) + " " + (r.token || d.token);
    $("deposit-checkout").href = d.checkout_url || "#";
    window.TollgateQR.draw($("deposit-qr"), r.uri || r.address || "");
    $("deposit-receive").hidden = false;
    setStatus("deposit-state", "Deposit " + d.id + " is " + d.status + ". Send exactly the amount shown; the balance updates here when the provider confirms.", "ok");
  } catch (e) {
    setStatus("deposit-state", "Could not create the deposit: " + e.message, "error");
  }
}
async function redeem(code) {
  setStatus("coupon-state", "Redeeming…");
  try {
    const r = await api("POST", "/v1/accounts/" + seg(state.account) + "/redeem", { code });
    setStatus("coupon-state", "Redeemed: " + r.amount + " credits added.", "ok");
    $("coupon-code").value = "";
  } catch (e) {
    const why = { invalid: "That code is not valid.", expired: "That coupon has expired.", exhausted: "That coupon has been used up.",
      already_redeemed: "This account already redeemed that coupon.", too_many_attempts: "Too many attempts; wait a moment." }[e.code];
    setStatus("coupon-state", why || "Could not redeem: " + e.message, "error");
  }
}
// Downloads with the token in the header, then hands the file to the browser.
async function download(kind) {
  const name = kind + ".csv";
  setStatus("report-state", "Preparing " + name + "…");
  try {
    const res = await fetch("/v1/accounts/" + seg(state.account) + "/reports/" + name, { headers: { Authorization: "Bearer " + state.token } });
    if (!res.ok) {
      let message = res.statusText;
      try { message = (await res.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    const blob = await res.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = state.account + "-" + name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    setStatus("report-state", "Downloaded " + a.download + ".", "ok");
  } catch (e) {
    setStatus("report-state", "Could not download the report: " + e.message, "error");
  }
}

// ---------- wiring ----------
document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  $("sign-out").addEventListener("click", signOut);
  $("find-form").addEventListener("submit", (e) => { e.preventDefault(); findAccounts($("find-prefix").value.trim()); });
  $("firehose-form").addEventListener("submit", (e) => { e.preventDefault(); watchFirehose($("firehose-prefix").value.trim(), $("firehose-kinds").value.trim()); });
  $("back-to-operator").addEventListener("click", showOperator);
  $("deposit-form").addEventListener("submit", (e) => { e.preventDefault(); deposit($("deposit-amount").value.trim(), $("deposit-provider").value); });
  $("coupon-form").addEventListener("submit", (e) => { e.preventDefault(); redeem($("coupon-code").value.trim()); });
  $("report-transactions").addEventListener("click", () => download("transactions"));
  $("report-usage").addEventListener("click", () => download("usage"));
  const saved = sessionStorage.getItem("tollgate-token");
  if (saved) signIn(saved);
});
