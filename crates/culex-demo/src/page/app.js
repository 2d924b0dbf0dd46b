// The culex demo page: draws each board from the server's state and sends
// button presses back. No framework, no external resources.
"use strict";

const boardsEl = document.getElementById("boards");
const logEl = document.getElementById("log");
const streamEl = document.getElementById("stream");
const MAX_LINES = 200;
const cards = new Map();

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pins(side) {
  const column = el("div", "pins " + side);
  for (let i = 0; i < 15; i++) column.appendChild(el("i"));
  return column;
}

function send(name, action) {
  fetch("/api/boards/" + encodeURIComponent(name) + "/" + action, { method: "POST" })
    .catch(() => {});
}

function makeCard(board) {
  const card = el("article", "board");
  card.id = "board-" + board.name;
  card.dataset.name = board.name;
  if (CSS.supports("color", board.name)) card.style.setProperty("--accent", board.name);

  const pcb = el("div", "pcb");
  pcb.appendChild(pins("left"));
  pcb.appendChild(pins("right"));
  const module = el("div", "module");
  module.appendChild(el("div", "antenna"));
  const shield = el("div", "shield");
  shield.appendChild(el("span", "", "ESP32-WROOM-32"));
  shield.appendChild(el("span", "wifi", "Wi-Fi · MQTT"));
  module.appendChild(shield);
  pcb.appendChild(module);
  pcb.appendChild(el("div", "label", board.name));
  pcb.appendChild(el("div", "peer", "peer: " + board.peer));

  const row = el("div", "row");
  const ledPart = el("div", "part");
  const led = el("span", "led");
  led.setAttribute("role", "img");
  ledPart.appendChild(led);
  ledPart.appendChild(el("span", "", "GPIO2"));
  const btnPart = el("div", "part");
  const button = el("button", "btn", "BOOT");
  button.type = "button";
  button.title = "hold to press GPIO0";
  btnPart.appendChild(button);
  btnPart.appendChild(el("span", "", "GPIO0"));
  row.appendChild(ledPart);
  row.appendChild(btnPart);
  pcb.appendChild(row);
  pcb.appendChild(el("div", "usb"));
  card.appendChild(pcb);

  const status = el("div", "status");
  const link = el("span", "link", "");
  const value = el("span", "value", "");
  status.appendChild(link);
  status.appendChild(value);
  card.appendChild(status);

  // Hold to press: the button is down from pointerdown until the pointer is
  // released or cancelled, wherever it is by then.
  let held = false;
  const press = (event) => {
    if (held) return;
    held = true;
    button.classList.add("pressed");
    if (event && event.pointerId !== undefined && button.setPointerCapture) {
      try { button.setPointerCapture(event.pointerId); } catch (_) { /* not capturable */ }
    }
    send(board.name, "press");
  };
  const release = () => {
    if (!held) return;
    held = false;
    button.classList.remove("pressed");
    send(board.name, "release");
  };
  button.addEventListener("pointerdown", press);
  button.addEventListener("mousedown", press);
  button.addEventListener("pointerup", release);
  button.addEventListener("pointercancel", release);
  button.addEventListener("mouseup", release);
  button.addEventListener("lostpointercapture", release);
  button.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); press(); }
  });
  button.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); release(); }
  });
  button.addEventListener("blur", release);

  return { card, led, button, link, value, isHeld: () => held };
}

function render(state) {
  document.getElementById("broker").textContent = state.broker;
  const [host, port] = splitHostPort(state.broker);
  const first = state.boards.length ? state.boards[0].name : "blue";
  document.getElementById("join").textContent =
    "culex pub -h " + host + " -p " + port + " -t " + first + "/btn/0 -m 0";
  const names = state.boards.map((b) => b.name).join(",");
  if (boardsEl.dataset.names !== names) {
    boardsEl.replaceChildren();
    cards.clear();
    for (const board of state.boards) {
      const view = makeCard(board);
      cards.set(board.name, view);
      boardsEl.appendChild(view.card);
    }
    boardsEl.dataset.names = names;
    document.querySelector("main").classList.toggle("many", state.boards.length > 3);
  }
  for (const board of state.boards) {
    const view = cards.get(board.name);
    view.led.classList.toggle("on", board.led);
    view.led.dataset.state = board.led ? "on" : "off";
    view.led.setAttribute("aria-label", "LED " + (board.led ? "on" : "off"));
    view.card.dataset.led = board.led ? "on" : "off";
    view.card.dataset.pressed = board.pressed ? "yes" : "no";
    if (!view.isHeld()) view.button.classList.toggle("pressed", board.pressed);
    view.button.setAttribute("aria-pressed", board.pressed ? "true" : "false");
    view.link.className = "link " + board.link;
    view.link.textContent = board.link;
    view.link.title = board.error || "";
    view.value.textContent = "GPIO0=" + board.button;
  }
}

function splitHostPort(text) {
  const i = text.lastIndexOf(":");
  return i < 0 ? [text, "1883"] : [text.slice(0, i), text.slice(i + 1)];
}

let lastSeq = -1;

function addLine(entry) {
  // A reconnected stream repeats its backlog; show each line once.
  if (entry.seq <= lastSeq) return;
  lastSeq = entry.seq;
  const line = el("div", "line");
  const space = entry.line.indexOf(" ");
  const topic = space < 0 ? entry.line : entry.line.slice(0, space);
  const payload = space < 0 ? "" : entry.line.slice(space + 1);
  line.appendChild(document.createTextNode(topic + " "));
  line.appendChild(el("span", payload === "0" ? "zero" : "", payload));
  const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
  logEl.appendChild(line);
  while (logEl.childElementCount > MAX_LINES) logEl.firstElementChild.remove();
  if (atBottom) logEl.scrollTop = logEl.scrollHeight;
}

function connect() {
  const events = new EventSource("/events");
  events.addEventListener("open", () => {
    streamEl.textContent = "live";
    streamEl.classList.add("live");
  });
  events.addEventListener("error", () => {
    streamEl.textContent = "reconnecting…";
    streamEl.classList.remove("live");
  });
  events.addEventListener("state", (e) => render(JSON.parse(e.data)));
  events.addEventListener("msg", (e) => addLine(JSON.parse(e.data)));
}

connect();
